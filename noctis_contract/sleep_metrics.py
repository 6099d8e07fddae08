"""Standard sleep metrics from a night's stages, as sleep labs report them (AASM terms).

Stages are per 30-s epoch in time order: 0 wake, 1 light, 2 deep, 3 REM, -1 unknown.
"""

from __future__ import annotations

from collections.abc import Sequence

from noctis_contract.features import EPOCH_SECONDS
from noctis_contract.stages import Stage

MINUTES_PER_EPOCH = EPOCH_SECONDS / 60
MIN_AWAKENING_EPOCHS = 2  # a wake bout of at least a minute counts as an awakening


def summarize(stages: Sequence[int]) -> dict[str, float | int | None]:
    n = len(stages)
    asleep = [i for i, s in enumerate(stages) if s in (Stage.LIGHT, Stage.DEEP, Stage.REM)]
    out: dict[str, float | int | None] = {"time_in_bed_min": n * MINUTES_PER_EPOCH}
    if not asleep:
        out.update(
            total_sleep_min=0.0,
            sleep_efficiency=0.0 if n else None,
            sleep_latency_min=None,
            waso_min=None,
            rem_latency_min=None,
            awakenings=0,
            light_min=0.0,
            deep_min=0.0,
            rem_min=0.0,
            light_pct=None,
            deep_pct=None,
            rem_pct=None,
        )
        return out
    onset, last = asleep[0], asleep[-1]
    total = len(asleep) * MINUTES_PER_EPOCH
    minutes = {
        stage: sum(1 for s in stages if s == stage) * MINUTES_PER_EPOCH
        for stage in (Stage.LIGHT, Stage.DEEP, Stage.REM)
    }
    first_rem = next((i for i in range(onset, n) if stages[i] == Stage.REM), None)
    awakenings, run = 0, 0
    for s in stages[onset : last + 1]:
        run = run + 1 if s == Stage.WAKE else 0
        if run == MIN_AWAKENING_EPOCHS:
            awakenings += 1
    out.update(
        total_sleep_min=total,
        sleep_efficiency=round(total / (n * MINUTES_PER_EPOCH), 4),
        sleep_latency_min=onset * MINUTES_PER_EPOCH,
        waso_min=sum(1 for s in stages[onset : last + 1] if s == Stage.WAKE) * MINUTES_PER_EPOCH,
        rem_latency_min=None if first_rem is None else (first_rem - onset) * MINUTES_PER_EPOCH,
        awakenings=awakenings,
        light_min=minutes[Stage.LIGHT],
        deep_min=minutes[Stage.DEEP],
        rem_min=minutes[Stage.REM],
        light_pct=round(100 * minutes[Stage.LIGHT] / total, 1),
        deep_pct=round(100 * minutes[Stage.DEEP] / total, 1),
        rem_pct=round(100 * minutes[Stage.REM] / total, 1),
    )
    return out


def hypnogram_svg(stages: Sequence[int], title: str, width: int = 900, height: int = 220) -> str:
    """A hypnogram as a small standalone SVG: wake on top, then REM, light, deep."""
    rows = {Stage.WAKE: 0, Stage.REM: 1, Stage.LIGHT: 2, Stage.DEEP: 3}
    left, top, plot_w, row_h = 60, 30, width - 80, (height - 60) / 4
    n = max(len(stages), 1)
    x = [left + plot_w * i / n for i in range(n + 1)]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{left}" y="18" font-size="14">{_escape(title)}</text>',
    ]
    for stage, row in rows.items():
        y = top + row * row_h + row_h / 2
        parts.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{stage.label}</text>')
        parts.append(f'<line x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}" stroke="#eee"/>')
    colours = {Stage.WAKE: "#e6550d", Stage.REM: "#756bb1", Stage.LIGHT: "#6baed6", Stage.DEEP: "#08519c"}
    for i, s in enumerate(stages):
        if s < 0:
            continue
        stage = Stage(s)
        y = top + rows[stage] * row_h + row_h * 0.15
        parts.append(
            f'<rect x="{x[i]:.2f}" y="{y:.1f}" width="{x[i + 1] - x[i] + 0.3:.2f}" '
            f'height="{row_h * 0.7:.1f}" fill="{colours[stage]}"/>'
        )
    hours = len(stages) * EPOCH_SECONDS / 3600
    for h in range(int(hours) + 1):
        xh = left + plot_w * h / max(hours, 1e-9)
        parts.append(f'<text x="{xh:.1f}" y="{height - 12}" text-anchor="middle">{h} h</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
