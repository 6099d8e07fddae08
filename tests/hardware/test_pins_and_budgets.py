import dataclasses

import pytest

from hardware import budgets, pins
from hardware.__main__ import FLASH_BYTES, generated_files


def test_committed_pin_map_is_sound_and_generated_files_are_current():
    assert pins.problems(pins.load()) == []
    for path, text in generated_files().items():
        assert path.read_text() == text, f"{path} is stale: run python -m hardware pins"


def _with(pinmap, name, **changes):
    return dataclasses.replace(
        pinmap, pins=tuple(dataclasses.replace(p, **changes) if p.name == name else p for p in pinmap.pins)
    )


@pytest.mark.parametrize(
    ("name", "changes", "fragment"),
    [
        ("STATUS_LED", {"gpio": 12}, "strapping pin"),
        ("STATUS_LED", {"gpio": 0}, "strapping pin"),
        ("STATUS_LED", {"gpio": 36}, "input-only pin cannot be output"),
        ("SETUP_BUTTON", {"gpio": 39}, "input-only pin cannot be input_pullup"),
        ("SUPPLY_SENSE", {"gpio": 25}, "ADC2 cannot be read while Wi-Fi is on"),
        ("STATUS_LED", {"gpio": 7}, "SPI flash"),
        ("STATUS_LED", {"gpio": 1}, "UART0"),
        ("STATUS_LED", {"gpio": 21}, "already used by IMU_I2C_SDA"),
        ("STATUS_LED", {"gpio": 24}, "no GPIO24"),
    ],
)
def test_each_kind_of_conflict_is_caught(name, changes, fragment):
    found = pins.problems(_with(pins.load(), name, **changes))
    assert any(fragment in problem for problem in found), found


def test_psram_modules_lose_gpio16_and_17():
    pinmap = dataclasses.replace(pins.load(), module="ESP32-WROVER-E-N16R8")
    assert any("PSRAM" in problem for problem in pins.problems(pinmap))


def test_flash_budget_needs_16_megabytes_for_189_days():
    small, large = budgets.flash_budget(8 * 1024 * 1024), budgets.flash_budget(FLASH_BYTES)
    assert not small["fits"]
    assert large["fits"] and large["queue_days"] >= 189
    with pytest.raises(ValueError):
        budgets.partition_csv(8 * 1024 * 1024)
    offsets = [int(p["offset"], 16) for p in large["partitions"].values()]
    sizes = [p["bytes"] for p in large["partitions"].values()]
    assert all(a + s <= b for a, s, b in zip(offsets, sizes, offsets[1:]))  # no overlap
    assert int(large["partitions"]["app0"]["offset"], 16) % 0x10000 == 0


def test_ram_budget_uses_the_measured_arena_and_fits():
    ram = budgets.ram_budget()
    assert ram["items"]["tflm_arena"] >= budgets._edge_budget()["tensor_arena_bytes"]
    assert ram["fits"] and ram["headroom_bytes"] > 0


def test_power_budget_adds_up():
    power = budgets.power_budget()
    assert abs(sum(power["loads_ma"].values()) - power["total_ma"]) < 0.1
    assert power["total_ma"] < 2000  # the supply's rating
