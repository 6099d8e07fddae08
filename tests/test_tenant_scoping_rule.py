"""The lint rule of our style guide: tenant filters are written once, in tenancy.py.

Every other module of the server reaches tenant-owned rows through TenantRepository,
so a forgotten filter cannot leak another tenant's data.
"""

import re
from pathlib import Path

SERVER = Path(__file__).resolve().parent.parent / "sync_server"
INLINE_FILTER = re.compile(r"\.c\.tenant_id\s*==|tenant_id\s*==\s*")


def test_no_inline_tenant_filters_outside_the_repository():
    offenders = []
    for path in SERVER.rglob("*.py"):
        if path.name == "tenancy.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if INLINE_FILTER.search(line):
                offenders.append(f"{path.relative_to(SERVER.parent)}:{number}: {line.strip()}")
    assert offenders == [], "filter through TenantRepository instead:\n" + "\n".join(offenders)
