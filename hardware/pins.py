"""Load and check the ESP32 pin map; generate the firmware header and the wiring SVG."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PINMAP = HERE / "pinmap.toml"

# ESP32 (not -S2/-S3/-C3) facts, from Espressif's ESP32 datasheet and technical reference.
VALID_GPIOS = frozenset({*range(0, 20), 21, 22, 23, 25, 26, 27, 32, 33, 34, 35, 36, 37, 38, 39})
STRAPPING = frozenset({0, 2, 5, 12, 15})  # sampled at reset: boot mode, flash voltage, boot log
INPUT_ONLY = frozenset({34, 35, 36, 37, 38, 39})  # no output driver, no internal pull resistors
FLASH_PINS = frozenset({6, 7, 8, 9, 10, 11})  # wired to the module's SPI flash
PSRAM_PINS = frozenset({16, 17})  # used by PSRAM on WROVER modules
UART0 = frozenset({1, 3})  # the console and the serial bootloader
ADC1 = frozenset({32, 33, 34, 35, 36, 37, 38, 39})
ADC2 = frozenset({0, 2, 4, 12, 13, 14, 15, 25, 26, 27})  # unusable by the ADC while Wi-Fi runs
OUTPUT_MODES = frozenset({"output", "uart_tx", "i2c_sda", "i2c_scl"})
INPUT_PULL_MODES = frozenset({"input_pullup", "input_pulldown"})
MODES = OUTPUT_MODES | INPUT_PULL_MODES | {"input", "uart_rx", "adc"}


@dataclass(frozen=True)
class Pin:
    name: str
    gpio: int
    mode: str
    peer: str
    why: str


@dataclass(frozen=True)
class PinMap:
    module: str
    pins: tuple[Pin, ...]

    @property
    def has_psram(self) -> bool:
        return "WROVER" in self.module.upper()


def load(path: Path = PINMAP) -> PinMap:
    data = tomllib.loads(path.read_text())
    return PinMap(module=data["module"], pins=tuple(Pin(**p) for p in data["pin"]))


def problems(pinmap: PinMap) -> list[str]:
    """Every reason this pin map would not work on the board; empty when it is sound."""
    found: list[str] = []
    seen: dict[int, str] = {}
    names: set[str] = set()
    for pin in pinmap.pins:
        where = f"{pin.name} (GPIO{pin.gpio})"
        if pin.name in names:
            found.append(f"{pin.name}: name used twice")
        names.add(pin.name)
        if pin.gpio in seen:
            found.append(f"{where}: GPIO{pin.gpio} already used by {seen[pin.gpio]}")
        seen[pin.gpio] = pin.name
        if pin.mode not in MODES:
            found.append(f"{where}: unknown mode {pin.mode!r}")
        if pin.gpio not in VALID_GPIOS:
            found.append(f"{where}: the ESP32 has no GPIO{pin.gpio}")
        if pin.gpio in FLASH_PINS:
            found.append(f"{where}: wired to the SPI flash")
        if pin.gpio in PSRAM_PINS and pinmap.has_psram:
            found.append(f"{where}: used by PSRAM on {pinmap.module}")
        if pin.gpio in UART0:
            found.append(f"{where}: UART0 is the console and bootloader")
        if pin.gpio in STRAPPING:
            found.append(f"{where}: strapping pin, its level at reset selects the boot mode")
        if pin.gpio in INPUT_ONLY and (pin.mode in OUTPUT_MODES or pin.mode in INPUT_PULL_MODES):
            found.append(f"{where}: input-only pin cannot be {pin.mode} (no driver, no pull resistors)")
        if pin.mode == "adc" and pin.gpio in ADC2:
            found.append(f"{where}: ADC2 cannot be read while Wi-Fi is on; use an ADC1 pin")
        if pin.mode == "adc" and pin.gpio not in ADC1 | ADC2:
            found.append(f"{where}: not an ADC pin")
    return found


def header(pinmap: PinMap) -> str:
    lines = [
        "// Generated from hardware/pinmap.toml by `python -m hardware pins`. Do not edit.",
        "#pragma once",
        "",
        "namespace noctis::pins {",
    ]
    for pin in pinmap.pins:
        lines.append(
            f"constexpr int k{''.join(w.title() for w in pin.name.split('_'))} = {pin.gpio};  // {pin.mode}: {pin.peer}"
        )
    lines += ["}  // namespace noctis::pins", ""]
    return "\n".join(lines)


def wiring_svg(pinmap: PinMap) -> str:
    """A wiring diagram: the ESP32 on the left, each peer on the right, one wire per pin."""
    row, top = 34, 90
    height = top + row * len(pinmap.pins) + 40
    colours = {
        "uart_rx": "#1f77b4",
        "uart_tx": "#1f77b4",
        "i2c_sda": "#2ca02c",
        "i2c_scl": "#2ca02c",
        "input": "#9467bd",
        "input_pullup": "#9467bd",
        "adc": "#d62728",
        "output": "#ff7f0e",
    }
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="760" height="{height}" font-family="sans-serif" '
        f'font-size="13">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="20" y="30" font-size="16" font-weight="bold">Noctis wiring — {pinmap.module}</text>',
        f'<rect x="20" y="{top - 20}" width="200" height="{row * len(pinmap.pins) + 10}" rx="8" '
        'fill="#f0f0f0" stroke="#333"/>',
        f'<text x="30" y="{top - 26}">ESP32 module</text>',
    ]
    for i, pin in enumerate(pinmap.pins):
        y = top + i * row
        colour = colours.get(pin.mode, "#333")
        parts += [
            f'<text x="30" y="{y + 4}">GPIO{pin.gpio}  {pin.name}</text>',
            f'<line x1="220" y1="{y}" x2="430" y2="{y}" stroke="{colour}" stroke-width="3"/>',
            f'<circle cx="220" cy="{y}" r="4" fill="{colour}"/><circle cx="430" cy="{y}" r="4" fill="{colour}"/>',
            f'<text x="300" y="{y - 5}" font-size="10" fill="{colour}">{pin.mode}</text>',
            f'<text x="440" y="{y + 4}">{pin.peer}</text>',
        ]
    y = top + row * len(pinmap.pins) + 16
    parts += [
        f'<text x="20" y="{y}" font-size="11">Power: 5 V USB-C to the DevKit 5V pin, the radar 5V and the '
        "GY-521 VCC; all grounds common. I2C pull-ups are on the GY-521.</text>",
        "</svg>",
    ]
    return "\n".join(parts)


def wiring_markdown(pinmap: PinMap) -> str:
    rows = "\n".join(f"| GPIO{p.gpio} | `{p.name}` | {p.mode} | {p.peer} | {p.why} |" for p in pinmap.pins)
    return f"""# Wiring ({pinmap.module})

Generated from `hardware/pinmap.toml` by `python -m hardware pins`; the diagram is
[`wiring.svg`](wiring.svg).

| ESP32 pin | name in firmware | mode | goes to | why this pin |
| --- | --- | --- | --- | --- |
{rows}

**Power.** The 5 V USB-C supply feeds the DevKit's 5V pin, the radar's 5V pin and the
GY-521's VCC (the GY-521 has its own 3.3 V regulator). All grounds are common. The
supply-sense divider goes from 5V through 100 kΩ to GPIO34 and 47 kΩ to GND.

**Radar.** MR60BHA1 UART is 3.3 V logic at 115200 8N1: its TX to GPIO16, its RX to
GPIO17. Keep the leads under 20 cm.

**Accelerometer.** The GY-521 has 4.7 kΩ I2C pull-ups on board; do not add more. Screw
it flat to the enclosure floor: it must move with the bed frame, not on its wires.

**LED and button.** LED anode to GPIO32 through 330 Ω, cathode to GND. Button between
GPIO33 and GND (the internal pull-up is enabled).
"""
