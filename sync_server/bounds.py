"""The bounds of every input, in one place: no request of any shape reaches the
database with a value its column cannot hold (an out-of-range integer, a NUL that
PostgreSQL text refuses, an offset past BIGINT)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar.params import Parameter

# No C0 control characters and no DEL: PostgreSQL cannot store NUL in text, and the
# others have no place in a name, a label or an email.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=PRINTABLE)]
Label = Annotated[str, msgspec.Meta(max_length=200, pattern=PRINTABLE)]
_EMAIL_PART = r"[^@\s\x00-\x1f\x7f]+"
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320, pattern=f"^{_EMAIL_PART}@{_EMAIL_PART}$")]

# Query parameters of the list routes.
Limit = Annotated[int, Parameter(ge=1, le=1000)]
Offset = Annotated[int, Parameter(ge=0, le=2**31 - 1)]

# No epoch, recording or night of this product lies before this (the device's clock was not set).
EARLIEST_TIME = datetime(2015, 1, 1, tzinfo=UTC)
