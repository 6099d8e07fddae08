"""The four sleep stages Noctis predicts, and how PSG scoring maps onto them."""

from __future__ import annotations

from enum import IntEnum


class Stage(IntEnum):
    WAKE = 0
    LIGHT = 1  # N1 + N2
    DEEP = 2  # N3 (and R&K stage 4)
    REM = 3

    @property
    def label(self) -> str:
        return self.name.lower()


STAGE_LABELS: tuple[str, ...] = tuple(s.label for s in Stage)
N_STAGES = len(Stage)

# PSG codes as in the Walch et al. files: -1 unscored, 0 wake, 1 N1, 2 N2, 3 N3,
# 4 N4 (Rechtschaffen & Kales), 5 REM. Unscored epochs map to None and are excluded.
PSG_TO_STAGE: dict[int, Stage | None] = {
    -1: None,
    0: Stage.WAKE,
    1: Stage.LIGHT,
    2: Stage.LIGHT,
    3: Stage.DEEP,
    4: Stage.DEEP,
    5: Stage.REM,
}


def stage_from_psg(code: int) -> Stage | None:
    if code not in PSG_TO_STAGE:
        raise ValueError(f"unknown PSG stage code {code}")
    return PSG_TO_STAGE[code]


# Stage names as people write them: ours, and AASM's (W, N1, N2, N3, R) with R&K's N4.
_STAGE_NAMES: dict[str, Stage] = {
    "wake": Stage.WAKE, "w": Stage.WAKE,
    "light": Stage.LIGHT, "n1": Stage.LIGHT, "n2": Stage.LIGHT,
    "deep": Stage.DEEP, "n3": Stage.DEEP, "n4": Stage.DEEP,
    "rem": Stage.REM, "r": Stage.REM,
}  # fmt: skip


def stage_from_name(name: str) -> Stage:
    """A scorer's stage name (any case): wake, light, deep, rem, or W, N1, N2, N3, N4, R, REM."""
    try:
        return _STAGE_NAMES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}: use wake, light, deep, rem or W, N1, N2, N3, N4, R") from None
