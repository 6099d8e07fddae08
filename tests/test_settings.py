import pytest

from sync_server.settings import Settings


def test_production_refuses_a_missing_or_default_secret(tmp_path):
    with pytest.raises(ValueError, match="JWT_SECRET"):
        Settings.from_env({"NOCTIS_ENVIRONMENT": "production", "NOCTIS_DATA_DIR": str(tmp_path)})
    with pytest.raises(ValueError, match="JWT_SECRET"):
        Settings.from_env({"NOCTIS_ENVIRONMENT": "production", "NOCTIS_JWT_SECRET": "change-me"})
    with pytest.raises(ValueError, match="32\\+ characters"):
        Settings.from_env({"NOCTIS_ENVIRONMENT": "production", "NOCTIS_JWT_SECRET": "short"})
    good = {"NOCTIS_ENVIRONMENT": "production", "NOCTIS_JWT_SECRET": "x" * 40}
    with pytest.raises(ValueError, match="OTA_SIGNING_KEY"):
        Settings.from_env(good)
    with pytest.raises(ValueError, match="OTA_SIGNING_KEY"):
        Settings.from_env({**good, "NOCTIS_OTA_SIGNING_KEY": "not hex"})
    assert Settings.from_env({**good, "NOCTIS_OTA_SIGNING_KEY": "ab" * 32}).ota_signing_key == "ab" * 32


def test_development_keeps_one_generated_secret_across_starts(tmp_path):
    env = {"NOCTIS_DATA_DIR": str(tmp_path), "NOCTIS_MAX_BATCH_EPOCHS": "300"}
    first, second = Settings.from_env(env), Settings.from_env(env)
    assert len(first.jwt_secret) >= 32 and first.jwt_secret == second.jwt_secret
    assert len(bytes.fromhex(first.ota_signing_key)) == 32 and first.ota_signing_key == second.ota_signing_key
    assert first.max_batch_epochs == 300
    assert first.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'noctis.db'}"


def test_limits_below_one_flash_block_are_refused(tmp_path):
    # A device uploads whole blocks of up to 267 epochs; a smaller limit would strand it.
    with pytest.raises(ValueError, match="one flash block"):
        Settings.from_env({"NOCTIS_DATA_DIR": str(tmp_path), "NOCTIS_MAX_BATCH_EPOCHS": "100"})


def test_the_cli_refuses_a_retention_shorter_than_a_device_can_stay_offline(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "NOCTIS_DATA_DIR": str(tmp_path), "NOCTIS_RETENTION_DAYS": "30"}
    run = subprocess.run(
        [sys.executable, "-m", "sync_server", "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2
    assert "shorter than the 190 days a device can hold epochs offline" in run.stderr
    assert "Traceback" not in run.stderr
    # Long enough, but SQLite has no retention job: said as plainly.
    env["NOCTIS_RETENTION_DAYS"] = "400"
    run = subprocess.run(
        [sys.executable, "-m", "sync_server", "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2 and "needs TimescaleDB" in run.stderr and "Traceback" not in run.stderr


def test_the_operators_commands_leave_the_schema_alone_and_say_when_it_is_behind(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "NOCTIS_DATA_DIR": str(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "sync_server", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    behind = cli("models", "list")
    assert behind.returncode == 2 and "Traceback" not in behind.stderr
    assert "run `python -m sync_server migrate` first" in behind.stderr
    assert "Running upgrade" not in behind.stderr
    assert cli("migrate").returncode == 0
    listed = cli("models", "list")
    assert listed.returncode == 0 and "server" in listed.stdout and "Running upgrade" not in listed.stderr
