"""Storage for a fleet: features as the device's 1-byte codes, one-day chunks, each
device's highest stored seq, text model versions.

- Epoch features are stored exactly as the device sends them: the contract's 1-byte
  codes (noctis_contract.features.quantize; 255 = missing) in smallint columns. Floats
  carried no more than the code anyway (every device value is a code), and on
  TimescaleDB smallint codes compress to ~18 bytes per epoch against ~89 for float8.
  Existing rows are quantized here with the contract's rule (round half away from zero
  of the clipped, scaled value), in SQL.
- devices.stored_seq: the highest seq stored for the device, kept by ingest under the
  device's row lock. A batch entirely above it needs no duplicate lookup, and the
  watermark needs no scan of epochs unless epochs arrived out of order.
- predictions.model_version becomes text (TimescaleDB advises text over varchar).
- TimescaleDB: one-day chunks instead of seven. At 5,000 devices a seven-day chunk holds
  ~34 M rows; a day's ~5 M rows and their primary-key index stay in memory while they
  are written, and one device's night fits one compressed batch (segment by device,
  ordered by seq). Compression of chunks older than the existing policy is kept. The
  time index create_hypertable used to add is dropped (revision 0001 no longer makes
  it): every query on these tables leads with device_id.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

from sync_server.migrate import compressed_hypertables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Frozen copy of feature schema v1's quantization (name, quant_min, quant_max): a
# migration must not change when the contract module does.
QUANTIZATION_V1 = (
    ("hr_mean", 30, 130),
    ("hr_std", 0, 20),
    ("ibi_rmssd", 0, 200),
    ("resp_rate_mean", 4, 40),
    ("resp_rate_std", 0, 10),
    ("resp_amplitude", 0, 20),
    ("resp_regularity", 0, 1),
    ("presence_ratio", 0, 1),
    ("target_distance", 0, 3),
    ("radar_motion", 0, 100),
    ("activity_count", 0, 300),
    ("accel_std", 0, 100),
    ("accel_peak", 0, 500),
    ("movement_events", 0, 30),
    ("hours_since_start", 0, 16),
)
MISSING_CODE, MAX_CODE = 255, 254
COMPRESSION = {"epochs": ("device_id", "seq"), "predictions": ("device_id, model_version", "seq")}
COMPRESSION_BEFORE = {"epochs": ("device_id", "seq"), "predictions": ("device_id", "seq, model_version")}


def _code(column: str, qmin: float, qmax: float, sqlite: bool) -> str:
    # The same float64 operations in the same order as quantize(); floor(x + 0.5) of a
    # non-negative x is a truncating cast on SQLite, which may lack floor().
    scaled = f"({column} - CAST({float(qmin)!r} AS REAL)) / CAST({float(qmax - qmin)!r} AS REAL) * {MAX_CODE}"
    if sqlite:
        clipped = f"min(max({scaled}, 0), {MAX_CODE})"
        return f"CASE WHEN {column} IS NULL THEN {MISSING_CODE} ELSE CAST({clipped} + 0.5 AS INTEGER) END"
    scaled = scaled.replace("AS REAL", "AS double precision")
    clipped = f"least(greatest({scaled}, 0), {MAX_CODE})"
    return f"CASE WHEN {column} IS NULL THEN {MISSING_CODE} ELSE floor({clipped} + 0.5)::smallint END"


def _value(column: str, qmin: float, qmax: float) -> str:
    value = f"{float(qmin)!r} + {column} * {float(qmax - qmin)!r} / {MAX_CODE}"
    return f"CASE WHEN {column} = {MISSING_CODE} THEN NULL ELSE {value} END"


@contextmanager
def _uncompressed(table: str, settings: tuple[str, str]) -> Iterator[None]:
    """TimescaleDB cannot change the columns of a compressed hypertable: decompress it,
    let the block alter it, then compress it again as before, with `settings`."""
    bind = op.get_bind()
    if table not in compressed_hypertables(bind):
        yield
        return
    job = "SELECT config->>'compress_after' FROM timescaledb_information.jobs "
    job += f"WHERE hypertable_name = '{table}' AND proc_name = 'policy_compression'"
    compress_after = bind.execute(sa.text(job)).scalar()
    op.execute(f"SELECT remove_compression_policy('{table}', if_exists => true)")
    op.execute(f"SELECT decompress_chunk(c, true) FROM show_chunks('{table}') c")
    op.execute(f"ALTER TABLE {table} SET (timescaledb.compress = false)")
    yield
    segment_by, order_by = settings
    op.execute(
        f"ALTER TABLE {table} SET (timescaledb.compress, "
        f"timescaledb.compress_segmentby = '{segment_by}', timescaledb.compress_orderby = '{order_by}')"
    )
    if compress_after:
        op.execute(f"SELECT add_compression_policy('{table}', INTERVAL '{compress_after}')")
        old_chunks = f"show_chunks('{table}', older_than => INTERVAL '{compress_after}')"
        op.execute(f"SELECT compress_chunk(c, true) FROM {old_chunks} c")


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    hypertables = compressed_hypertables(bind)
    for table in hypertables:
        op.execute(f"DROP INDEX IF EXISTS {table}_start_time_idx")
    with _uncompressed("epochs", COMPRESSION["epochs"]):
        if sqlite:  # quantize in place, then let the batch copy retype the columns
            op.execute(
                "UPDATE epochs SET " + ", ".join(f"{n} = {_code(n, lo, hi, True)}" for n, lo, hi in QUANTIZATION_V1)
            )
        with op.batch_alter_table("epochs") as batch:
            for name, lo, hi in QUANTIZATION_V1:
                batch.alter_column(
                    name,
                    type_=sa.SmallInteger(),
                    existing_type=sa.Float(),
                    nullable=False,
                    postgresql_using=_code(name, lo, hi, False),
                )
        if "epochs" in hypertables:
            op.execute("SELECT set_chunk_time_interval('epochs', INTERVAL '1 day')")
    with _uncompressed("predictions", COMPRESSION["predictions"]):
        with op.batch_alter_table("predictions") as batch:
            batch.alter_column("model_version", type_=sa.Text(), existing_type=sa.String(64))
        if "predictions" in hypertables:
            op.execute("SELECT set_chunk_time_interval('predictions', INTERVAL '1 day')")
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("stored_seq", sa.BigInteger(), nullable=False, server_default="-1"))
    highest = "SELECT max(seq) FROM epochs WHERE device_id = devices.id"
    op.execute(f"UPDATE devices SET stored_seq = COALESCE(({highest}), -1)")


def downgrade() -> None:
    bind = op.get_bind()
    hypertables = compressed_hypertables(bind)
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("stored_seq")
    with _uncompressed("predictions", COMPRESSION_BEFORE["predictions"]):
        with op.batch_alter_table("predictions") as batch:
            batch.alter_column("model_version", type_=sa.String(64), existing_type=sa.Text())
        if "predictions" in hypertables:
            op.execute("SELECT set_chunk_time_interval('predictions', INTERVAL '7 days')")
    with _uncompressed("epochs", COMPRESSION_BEFORE["epochs"]):
        with op.batch_alter_table("epochs") as batch:
            for name, lo, hi in QUANTIZATION_V1:  # nullable first: missing codes become NULL
                batch.alter_column(name, existing_type=sa.SmallInteger(), nullable=True)
                batch.alter_column(
                    name, type_=sa.Float(), existing_type=sa.SmallInteger(), postgresql_using=_value(name, lo, hi)
                )
        if bind.dialect.name == "sqlite":
            op.execute("UPDATE epochs SET " + ", ".join(f"{n} = {_value(n, lo, hi)}" for n, lo, hi in QUANTIZATION_V1))
        if "epochs" in hypertables:
            op.execute("SELECT set_chunk_time_interval('epochs', INTERVAL '7 days')")
