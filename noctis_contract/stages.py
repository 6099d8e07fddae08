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
