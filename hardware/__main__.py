"""python -m hardware check | pins | budgets | render"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hardware import budgets, enclosure, pins

HERE = Path(__file__).resolve().parent
FIRMWARE_INCLUDE = HERE.parent / "edge_firmware" / "include"
FLASH_BYTES = 16 * 1024 * 1024  # ESP32-WROOM-32E-N16: see BOM.md for why not 8 MB


def generated_files() -> dict[Path, str]:
    """Every file generated from hardware data, with the text it must have."""
    pinmap = pins.load()
    return {
        FIRMWARE_INCLUDE / "noctis_pins.h": pins.header(pinmap),
        HERE / "wiring.svg": pins.wiring_svg(pinmap),
        HERE / "WIRING.md": pins.wiring_markdown(pinmap),
        HERE / "partitions.csv": budgets.partition_csv(FLASH_BYTES),
    }


def check(_: argparse.Namespace) -> None:
    problems = pins.problems(pins.load())
    stale = [str(p) for p, text in generated_files().items() if not p.exists() or p.read_text() != text]
    if stale:
        problems.append(f"generated files out of date (run `python -m hardware pins`): {', '.join(stale)}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print("pin map sound, generated files current")


def write_pins(_: argparse.Namespace) -> None:
    for path, text in generated_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")


def show_budgets(_: argparse.Namespace) -> None:
    figures = budgets.firmware_figures()
    report = {
        "flash_8MB": budgets.flash_budget(8 * 1024 * 1024),
        "flash_16MB": budgets.flash_budget(FLASH_BYTES),
        "firmware": figures,
        "ram": budgets.ram_budget(figures),
        "power": budgets.power_budget(figures),
    }
    print(json.dumps(report, indent=2))


def render(args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    for part in ("base", "lid"):
        path = enclosure.render(part, args.out / f"noctis_{part}.stl")
        print(f"rendered {path}")
    picture = enclosure.picture(args.out / "noctis_base.stl", args.out / "noctis_lid.stl", HERE / "enclosure.png")
    print(f"drew {picture}")
    problems = enclosure.check(args.out / "noctis_base.stl")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print("boards fit with clearance; the radar's beam leaves through the window untouched")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hardware")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="check the pin map and that generated files are current")
    commands.add_parser("pins", help="write the firmware pin header, wiring.svg and partitions.csv")
    commands.add_parser("budgets", help="print the flash, RAM and power budgets")
    r = commands.add_parser("render", help="render the enclosure to STL with OpenSCAD and check the fit")
    r.add_argument("--out", type=Path, default=HERE / "build")
    args = parser.parse_args(argv)
    {"check": check, "pins": write_pins, "budgets": show_budgets, "render": render}[args.command](args)


if __name__ == "__main__":
    main()
