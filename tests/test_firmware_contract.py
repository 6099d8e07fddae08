"""The firmware's generated headers must say what the Python sources say."""

from pathlib import Path

from noctis_contract.cheader import header

FIRMWARE = Path(__file__).resolve().parent.parent / "edge_firmware"


def test_committed_schema_header_matches_the_python_contract():
    committed = (FIRMWARE / "include" / "noctis_schema.h").read_text()
    assert committed == header(), (
        "run: python -m noctis_contract.cheader header > edge_firmware/include/noctis_schema.h"
    )


def test_schema_header_lists_every_feature_in_order():
    from noctis_contract.features import FEATURES

    text = header()
    positions = [text.index(f'{{"{f.name}"') for f in FEATURES]
    assert positions == sorted(positions)
