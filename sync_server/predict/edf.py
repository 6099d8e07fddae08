"""A staged night as an EDF+ file (written by edfio), for sleep software that reads
scored PSG: two hypnogram signals, the server's and the device's own stages (one
sample per 30-s epoch: 0 wake, 1 light, 2 deep, 3 REM; -1 not staged), and one
annotation per epoch with the server's stage ("Sleep stage W", "Sleep stage N1-N2"
for light, which stands for N1 and N2 together, "Sleep stage N3", "Sleep stage R")."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
from edfio import Edf, EdfAnnotation, EdfSignal, Recording

from noctis_contract.features import EPOCH_SECONDS

ANNOTATION = ("Sleep stage W", "Sleep stage N1-N2", "Sleep stage N3", "Sleep stage R")


def night_edf(started: datetime, server: list[int], edge: list[int], equipment: str) -> bytes:
    def hypnogram(stages: list[int], label: str) -> EdfSignal:
        return EdfSignal(
            np.asarray(stages, dtype=float),
            sampling_frequency=1 / EPOCH_SECONDS,
            label=label,
            physical_range=(-1, 3),
            digital_range=(-1, 3),
        )

    annotations = [
        EdfAnnotation(i * EPOCH_SECONDS, EPOCH_SECONDS, ANNOTATION[stage])
        for i, stage in enumerate(server)
        if stage >= 0
    ]
    edf = Edf(
        [hypnogram(server, "Hypnogram server"), hypnogram(edge, "Hypnogram edge")],
        recording=Recording(startdate=started.date(), equipment_code=equipment[:80].replace(" ", "_")),
        starttime=started.time().replace(microsecond=0, tzinfo=None),
        data_record_duration=EPOCH_SECONDS,
        annotations=annotations,
    )
    out = io.BytesIO()
    edf.write(out)
    return out.getvalue()
