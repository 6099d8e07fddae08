"""python -m drift_service bench: how well the drift detector finds faults, how soon,
and how often it cries wolf.

A fleet of devices sleeps `NIGHTS` nights each. Most are clean; on the others a fault
begins at night `ONSET`. Every night goes through the real pipeline: the features are
quantized as the device stores them, the edge model (the registry's TFLite file, run
by LiteRT) stages the device's codes, the active server model stages the stored
values, and the detector judges all devices' nights together (false discoveries are
controlled across the fleet, as in `python -m drift_service run`).

Devices are of two kinds. Simulated sleepers (`model_export.simulator.Sleeper`) have
all 15 features and night-to-night variation. Real devices replay one of the 21 real
nights (heart rate and movement from a watch, no radar) with the simulator's assumed
night-to-night variation added (resting heart rate +-2 bpm, movement +-20 %, the
night's start and end trimmed by up to 20 minutes): the data has one night per person.

Scenarios (what a fault does to a device from its onset):
- hr_flatline: the radar's heart rate freezes at one value, its spread and HRV at zero;
- radar_no_presence: the radar sees nobody (presence 0, vitals missing);
- accel_detached: the accelerometer reads its noise floor, no movement;
- gain_drift: the radar's amplitude gain rises 1 % an hour (24 hours a day);
- quantization_bug: the firmware stores resp_regularity through an int8 (codes >= 128
  lose their top bit);
- edge_disagrees: the device maps its model's outputs in an old label order (deep and
  REM swapped);
- less_deep: the sleeper has half the deep sleep (a population change, not a fault).

A detection counts when a flagged night on or after the onset names the scenario's
kind (sensor, edge or sleep); delay is in nights after the onset (0 = the onset night).
The false-alarm rate is the share of clean devices flagged on any judged night.
"""

from __future__ import annotations

import statistics as stats
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from drift_service import detector
from model_export.edge_model import model_inputs, staged_late
from model_export.simulator import Sleeper, simulate_night
from model_export.walch import Night, load_all
from noctis_contract.features import EPOCH_SECONDS, FEATURE_NAMES, dequantize, indices, night_hours, quantize
from noctis_contract.night_model import NightModel, load_night_model
from noctis_contract.stages import Stage
from sync_server.models.service import ModelStore

NIGHTS = 14
ONSET = 6
ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "model_export" / "registry"
REAL_DATA = ROOT / "model_export" / "data" / "walch2019"
_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}
_RADAR_VITALS = [i for i in indices("radar") if i != _COL["presence_ratio"]]


@dataclass
class Night_:
    features: np.ndarray  # (n, 15) float, NaN = missing, before the device quantizes
    night: int  # the device's night number
    edge_labels: tuple[int, ...] = tuple(range(4))  # model output index -> stage


def hr_flatline(n: Night_) -> None:
    f = n.features
    present = ~np.isnan(f[:, _COL["hr_mean"]])
    if present.any():
        f[present, _COL["hr_mean"]] = f[present, _COL["hr_mean"]][0]
        f[present, _COL["hr_std"]] = 0.0
        f[present, _COL["ibi_rmssd"]] = 0.0


def radar_no_presence(n: Night_) -> None:
    n.features[:, _COL["presence_ratio"]] = 0.0
    n.features[:, _RADAR_VITALS] = np.nan


def accel_detached(n: Night_) -> None:
    f = n.features
    for name, floor in (("activity_count", 0.0), ("movement_events", 0.0), ("accel_std", 0.4), ("accel_peak", 1.5)):
        column = f[:, _COL[name]]
        f[:, _COL[name]] = np.where(np.isnan(column), np.nan, floor)


def gain_drift(n: Night_) -> None:
    hours = (n.night - ONSET) * 24 + n.features[:, _COL["hours_since_start"]]
    n.features[:, _COL["resp_amplitude"]] *= 1 + 0.01 * hours


def edge_disagrees(n: Night_) -> None:
    n.edge_labels = (Stage.WAKE, Stage.LIGHT, Stage.REM, Stage.DEEP)


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str
    fault: Callable[[Night_], None] | None  # on the night's values; None: see below
    real_devices: bool  # whether watch-only real nights have the sensor it touches


SCENARIOS = (
    Scenario("hr_flatline", "sensor", hr_flatline, True),
    Scenario("radar_no_presence", "sensor", radar_no_presence, False),
    Scenario("accel_detached", "sensor", accel_detached, True),
    Scenario("gain_drift", "sensor", gain_drift, False),
    Scenario("quantization_bug", "sensor", None, False),  # on the stored codes
    Scenario("edge_disagrees", "edge", edge_disagrees, True),
    Scenario("less_deep", "sleep", None, False),  # on the sleeper
)


@dataclass
class Device:
    name: str
    tenant: str
    scenario: Scenario | None
    sleeper: Sleeper | None = None  # simulated
    real: Night | None = None  # replayed real night
    flagged: dict[int, tuple[str, str]] = field(default_factory=dict)  # night -> (kind, statistic)


def _real_night(real: Night, rng: np.random.Generator) -> np.ndarray:
    start, end = (int(x) for x in rng.integers(0, 40, 2))  # epochs: up to 20 minutes
    f = real.features[start : len(real.features) - end].copy()
    f[:, _COL["hours_since_start"]] = night_hours(np.arange(len(f)) * EPOCH_SECONDS, 0)
    f[:, _COL["hr_mean"]] += rng.normal(0, 2.0)
    for name in ("activity_count", "movement_events"):
        f[:, _COL[name]] *= rng.lognormal(0, 0.2)
    return f


def night_of(device: Device, night: int, seed: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """The device's stored codes for one night and its edge label order."""
    rng = np.random.default_rng((seed, night, zlib.crc32(device.name.encode())))
    faulty = device.scenario is not None and night >= ONSET
    if device.real is not None:
        values = _real_night(device.real, rng)
    else:
        sleeper = device.sleeper
        assert sleeper is not None
        if faulty and device.scenario.name == "less_deep":  # type: ignore[union-attr]
            sleeper = Sleeper(**{**sleeper.__dict__, "deep_scale": 0.5})
        values = simulate_night(int(rng.integers(2**31)), sleeper=sleeper).features
    n = Night_(values, night)
    if faulty and device.scenario.fault is not None:  # type: ignore[union-attr]
        device.scenario.fault(n)  # type: ignore[union-attr]
    codes = quantize(n.features)
    if faulty and device.scenario.name == "quantization_bug":  # type: ignore[union-attr]
        column = codes[:, _COL["resp_regularity"]]
        codes[:, _COL["resp_regularity"]] = np.where((column >= 128) & (column < 255), column & 0x7F, column)
    return codes, n.edge_labels


class EdgeModel:
    """The registry's edge model in LiteRT, fed the device's codes epoch by epoch; each
    output is the stage of the epoch ``lookahead`` before it, as the device places it."""

    def __init__(self, model_bytes: bytes, lookahead: int = 0) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=model_bytes)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.lookahead = lookahead

    def stages(self, codes: np.ndarray) -> np.ndarray:
        out = np.empty(len(codes), dtype=np.int64)
        for i, window in enumerate(model_inputs(codes)):
            self.interpreter.set_tensor(self.input, window[None])
            self.interpreter.invoke()
            out[i] = int(np.argmax(self.interpreter.get_tensor(self.output)[0]))
        return staged_late(out, self.lookahead)


TENANT_SIZE = 10
COHORTS = 3  # tenants whose whole population sleeps differently (less_deep)


def fleet(simulated: int, real: list[Night], rng: np.random.Generator, per_scenario: int) -> list[Device]:
    """Simulated devices in tenants of TENANT_SIZE, the real ones in a tenant of their
    own. less_deep takes COHORTS whole tenants; the other faults take single devices
    (per_scenario simulated, and three real ones where the real nights have the sensor)."""
    devices = [
        Device(f"sim-{i}", f"tenant-{i // TENANT_SIZE}", None, sleeper=Sleeper.draw(rng)) for i in range(simulated)
    ]
    devices += [Device(f"real-{night.subject}", "tenant-real", None, real=night) for night in real]
    tenants = sorted({d.tenant for d in devices if d.real is None})
    cohorts = set(rng.choice(tenants, COHORTS, replace=False))
    less_deep = next(s for s in SCENARIOS if s.name == "less_deep")
    for device in devices:
        if device.tenant in cohorts:
            device.scenario = less_deep
    free = {
        "sim": [d for d in devices if d.real is None and d.scenario is None],
        "real": [d for d in devices if d.real is not None],
    }
    for pool in free.values():
        rng.shuffle(pool)
    for scenario in SCENARIOS:
        if scenario is less_deep:
            continue
        for _ in range(per_scenario):
            free["sim"].pop().scenario = scenario
        if scenario.real_devices:
            for _ in range(min(3, len(free["real"]) - 3)):  # keep some real devices clean
                free["real"].pop().scenario = scenario
    return devices


def judge(devices: list[Device], summaries: dict[str, list[dict[str, float]]], night: int) -> set[str]:
    """One night of `python -m drift_service run`; the tenants whose population is flagged."""
    b = detector.BASELINE_NIGHTS
    histories = [
        detector.History(d.name, d.tenant, summaries[d.name][:b], summaries[d.name][b : night + 1]) for d in devices
    ]
    verdicts, populations = detector.judge(histories)
    for device in devices:
        verdict = verdicts[device.name]
        if verdict.kind is not None and verdict.statistic is not None:
            device.flagged[night] = (verdict.kind, verdict.statistic)
    return {str(tenant) for tenant, verdict in populations.items() if verdict.kind is not None}


def run(simulated: int = 300, per_scenario: int = 20, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    real = load_all(REAL_DATA) if REAL_DATA.exists() else []
    devices = fleet(simulated, real, rng, per_scenario)
    # What a fresh server activates and devices run: the newest registered of each kind.
    store = ModelStore(REGISTRY)
    server, _ = load_night_model(REGISTRY / str(store.newest_version("server")))
    edge_manifest, edge_bytes = store.edge_artifact(str(store.newest_version("edge")))
    edge = EdgeModel(edge_bytes, edge_manifest.get("lookahead_epochs", 0))
    summaries: dict[str, list[dict[str, float]]] = {d.name: [] for d in devices}
    populations: dict[str, list[int]] = {}  # tenant -> nights its population was flagged
    with Progress(transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("nights", total=len(devices) * NIGHTS)
        for night in range(NIGHTS):
            for device in devices:
                summaries[device.name].append(one_night(device, night, seed, server, edge))
                progress.advance(task)
            if night >= detector.BASELINE_NIGHTS:
                for tenant in judge(devices, summaries, night):
                    populations.setdefault(tenant, []).append(night)
    return report(devices, populations)


def one_night(device: Device, night: int, seed: int, server: NightModel, edge: EdgeModel) -> dict[str, float]:
    codes, labels = night_of(device, night, seed)
    values = dequantize(codes)  # what the server stores
    edge_stages = np.array(labels)[edge.stages(codes)]
    server_stages = server.predict_proba(values).argmax(axis=1)
    return detector.night_summary(values, edge_stages, server_stages)


def _line(name: str, units: int, delays: list[int], wrong: int) -> str:
    median = stats.median(delays) if delays else float("nan")
    return (
        f"{name:<18} units={units:<3} detection_rate={len(delays) / units:.2f} "
        f"median_delay_nights={median:g} wrong_kind={wrong}"
    )


def report(devices: list[Device], populations: dict[str, list[int]]) -> list[str]:
    """Per scenario, then clean devices and tenants, then the overall line. A device
    fault's unit is the device; less_deep's is the tenant (a population)."""
    lines, all_delays, detected, units = [], [], 0, 0
    for scenario in SCENARIOS:
        if scenario.kind == "sleep":
            cohorts = sorted({d.tenant for d in devices if d.scenario is scenario})
            delays = [
                min(n for n in populations[t] if n >= ONSET) - ONSET
                for t in cohorts
                if any(n >= ONSET for n in populations.get(t, []))
            ]
            wrong = sum(
                any(n >= ONSET and k != "sleep" for n, (k, _) in d.flagged.items())
                for d in devices
                if d.scenario is scenario
            )
            lines.append(_line(scenario.name, len(cohorts), delays, wrong) + " (tenants; wrong_kind counts devices)")
            count = len(cohorts)
        else:
            affected = [d for d in devices if d.scenario is scenario]
            delays, wrong = [], 0
            for device in affected:
                right = [n for n, (kind, _) in sorted(device.flagged.items()) if n >= ONSET and kind == scenario.kind]
                wrong += any(n >= ONSET and kind != scenario.kind for n, (kind, _) in device.flagged.items())
                if right:
                    delays.append(right[0] - ONSET)
            lines.append(_line(scenario.name, len(affected), delays, wrong))
            count = len(affected)
        detected += len(delays)
        units += count
        all_delays += delays
    clean = [d for d in devices if d.scenario is None]
    alarms = [d for d in clean if d.flagged]
    clean_tenants = sorted(
        {d.tenant for d in devices} - {d.tenant for d in devices if d.scenario and d.scenario.kind == "sleep"}
    )
    tenant_alarms = [t for t in clean_tenants if populations.get(t)]
    lines.append(
        f"{'clean devices':<18} units={len(clean):<3} flagged={len(alarms)} "
        f"(nights {sum(len(d.flagged) for d in clean)} of {len(clean) * (NIGHTS - detector.BASELINE_NIGHTS)})"
        + "".join(f" {d.name}:{sorted(v[1] for v in d.flagged.values())}" for d in alarms[:3])
    )
    lines.append(f"{'clean tenants':<18} units={len(clean_tenants):<3} flagged={len(tenant_alarms)}")
    overall_delay = stats.median(all_delays) if all_delays else float("nan")
    false_alarms = (len(alarms) + len(tenant_alarms)) / (len(clean) + len(clean_tenants))
    lines.append(
        f"detection_rate={detected / units:.3f} false_alarm_rate={false_alarms:.3f} "
        f"median_delay_nights={overall_delay:g}"
    )
    return lines
