"""Write model versions into a registry directory: manifest, hashed files, no pickle."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from noctis_contract.features import FEATURES, MISSING_CODE, SCHEMA_VERSION
from noctis_contract.night_model import NightModel, sha256_file
from noctis_contract.stages import STAGE_LABELS

EDGE_FORMAT = "tflite-int8-window-v1"


def new_version_dir(registry_dir: Path, version: str) -> Path:
    target = registry_dir / version
    if target.exists():
        raise FileExistsError(f"{target} exists: a registered version is never overwritten")
    target.mkdir(parents=True)
    return target


def _manifest(target: Path, version: str, kind: str, fmt: str, files: list[str], **fields: object) -> None:
    manifest = {
        "version": version,
        "kind": kind,
        "format": fmt,
        "files": {name: sha256_file(target / name) for name in files},
        "feature_schema_version": SCHEMA_VERSION,
        "features": [f.name for f in FEATURES],
        "labels": list(STAGE_LABELS),
        **fields,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def write_server_model(target: Path, model: NightModel, **fields: object) -> None:
    np.savez(target / "weights.npz", **model.arrays())
    _manifest(
        target,
        model.version,
        "server",
        model.format,
        ["weights.npz"],
        input_quantization=None,
        feature_set=model.feature_set,
        **fields,
    )


def write_edge_model(
    target: Path, version: str, tflite: bytes, float_weights: dict[str, np.ndarray], **fields: object
) -> None:
    (target / "model.tflite").write_bytes(tflite)
    np.savez(target / "float_weights.npz", **float_weights)
    _manifest(
        target,
        version,
        "edge",
        EDGE_FORMAT,
        ["model.tflite", "float_weights.npz"],
        input_quantization={
            "encoding": "feature codes as in noctis_contract.features.quantize",
            "dtype": "uint8",
            "scale": 1.0,
            "zero_point": 0,
            "missing_code": MISSING_CODE,
            "codes": {f.name: [f.quant_min, f.quant_max] for f in FEATURES},
        },
        **fields,
    )


def version_number(version: str) -> int:
    """The integer the flash blocks carry: edge-7 -> 7."""
    return int(version.rsplit("-", 1)[1])
