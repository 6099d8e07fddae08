import pytest

from noctis_contract.ota import manifest_bytes, parse_manifest


def test_a_model_without_lookahead_keeps_format_1_and_one_with_it_signs_it_in_format_2():
    model = bytes(range(256)) * 10
    plain = manifest_bytes(9, model, 4096, rollout=3)
    assert len(plain) == 56 and plain[4] == 1
    assert parse_manifest(plain)["lookahead_epochs"] == 0
    late = manifest_bytes(10, model, 4096, rollout=4, lookahead=7)
    assert len(late) == 60 and late[4] == 2
    parsed = parse_manifest(late)
    assert (parsed["model_version"], parsed["rollout"], parsed["lookahead_epochs"]) == (10, 4, 7)
    assert parsed["size"] == len(model)
    for broken in (late[:56], plain + b"\0\0\0\0", b"XMOD" + plain[4:], plain[:40]):
        with pytest.raises(ValueError):
            parse_manifest(broken)
