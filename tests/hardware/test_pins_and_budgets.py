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


@pytest.fixture(scope="module")
def firmware():
    return budgets.firmware_figures()


def test_budgets_read_the_firmwares_own_buffers_and_fit(firmware):
    # The figures are the firmware's: its header's body limit, its board's stacks.
    sync_header = (budgets.FIRMWARE / "include" / "noctis" / "sync.h").read_text()
    assert f"kMaxBodyBlocks = {firmware['max_body_blocks']};" in sync_header
    assert firmware["max_body_bytes"] > firmware["max_body_blocks"] * 4096
    assert firmware["device_bytes"] > firmware["max_body_bytes"]  # the upload buffer lives in the device
    assert firmware["loop_stack_bytes"] == 16384 and firmware["sync_every_s"] == 30
    ram = budgets.ram_budget(firmware)
    assert ram["items"]["tflm_arena: the running model"] >= budgets._edge_budget()["tensor_arena_bytes"]
    assert ram["fits"] and ram["headroom_bytes"] > 0


def test_the_ram_budget_fails_when_the_firmwares_buffers_outgrow_it(firmware):
    # An upload buffer of 32 blocks instead of 4 would not fit beside Wi-Fi and TLS.
    thirty_two_blocks = dict(firmware, device_bytes=firmware["device_bytes"] + 28 * 4096)
    assert not budgets.ram_budget(thirty_two_blocks)["fits"]
    assert not budgets.ram_budget(dict(firmware, sampling_stack_bytes=64 * 1024))["fits"]


def test_power_budget_adds_up_on_the_firmwares_upload_schedule(firmware):
    power = budgets.power_budget(firmware)
    assert abs(sum(power["loads_ma"].values()) - power["total_ma"]) < 0.1
    assert power["total_ma"] < 2000  # the supply's rating
    assert any(f"every {firmware['sync_every_s']} s" in load for load in power["loads_ma"])
    rarer = budgets.power_budget(dict(firmware, sync_every_s=300))
    assert rarer["total_ma"] < power["total_ma"] and power["hours_on_a_10000_mah_power_bank"] > 0
