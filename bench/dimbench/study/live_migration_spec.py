"""The `[live.migration]` sub-table of a grid: how the live stage measures the seed's Phase 3 (the
legacy upgrade 0005–0011, the embedding_768 backfill, the concurrent index build) under traffic.

Parsed with the rest of `[live]`, before anything runs; the result is a plain JSON-safe dict (every
key filled in) so live.json's settings carry it as it was measured. Absent: the migration is not
measured.
"""

from __future__ import annotations

from typing import Any

from dimbench.errors import DimbenchError
from dimbench.tomlcheck import in_range, no_unknown, typed

DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "seconds": 10.0,  # each timed phase without a migration step: before, after, between steps
    "settle_s": 1.0,  # traffic kept running after each migration file before the next starts
    "search_rate": 20.0,  # searches/s offered (open loop)
    "search_clients": 2,
    "ingest_rate": 10.0,  # single-chunk inserts/s offered (open loop)
    "ingest_clients": 1,
    "batch_rows": 500,  # rows per backfill transaction
    "backfill_max_rows": 100_000,  # the backfill stops here (0: no cap)
}
NUMBERS: dict[str, tuple[type, float, float, bool]] = {  # key: (type, low, high, low end open)
    "seconds": (float, 1, 3600, False),
    "settle_s": (float, 0, 600, False),
    "search_rate": (float, 0, 10_000, True),
    "search_clients": (int, 1, 64, False),
    "ingest_rate": (float, 0, 10_000, True),
    "ingest_clients": (int, 1, 64, False),
    "batch_rows": (int, 1, 1_000_000, False),
    "backfill_max_rows": (int, 0, 100_000_000, False),
}


def parse_migration(raw: Any, where: str) -> dict[str, Any] | None:
    """A grid's [live.migration] table checked (None when the grid has none); `where` names [live]."""
    if raw is None:
        return None
    where = f"{where} migration"
    if not isinstance(raw, dict):
        raise DimbenchError(f"{where}: must be a table")
    no_unknown(raw, DEFAULTS, where)
    values: dict[str, Any] = {"enabled": typed(raw, "enabled", bool, DEFAULTS["enabled"], where)}
    for key, (kind, low, high, low_open) in NUMBERS.items():
        value = typed(raw, key, kind, DEFAULTS[key], where)
        in_range(value, low, high, where, key, low_open=low_open)
        values[key] = value
    for what in ("search", "ingest"):
        rate, clients = values[f"{what}_rate"], values[f"{what}_clients"]
        if clients > rate * values["seconds"]:
            raise DimbenchError(
                f"{where}: {clients} {what} clients for {rate * values['seconds']:g} requests in a "
                f"{values['seconds']:g} s phase: most clients would never send one"
            )
    return values
