"""Write model versions into a registry directory: manifest, hashed files, no pickle."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from noctis_contract.features import FEATURES, SCHEMA_VERSION
from noctis_contract.night_model import MODEL_FORMAT, NightModel, sha256_file
from noctis_contract.stages import STAGE_LABELS


def write_server_model(
    registry_dir: Path,
    model: NightModel,
    *,
    training_data: dict[str, object],
    metrics: dict[str, float],
    reference_stats: dict[str, object],
    parent_version: str | None,
) -> Path:
    target = registry_dir / model.version
    if target.exists():
        raise FileExistsError(f"{target} exists: a registered version is never overwritten")
    target.mkdir(parents=True)
    np.savez(target / "weights.npz", **model.arrays())
    manifest = {
        "version": model.version,
        "kind": "server",
        "format": MODEL_FORMAT,
        "files": {"weights.npz": sha256_file(target / "weights.npz")},
        "feature_schema_version": SCHEMA_VERSION,
        "features": [f.name for f in FEATURES],
        "labels": list(STAGE_LABELS),
        "input_quantization": None,
        "training_data": training_data,
        "metrics": metrics,
        "reference_stats": reference_stats,
        "parent_version": parent_version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return target
