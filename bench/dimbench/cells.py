"""A cell's identity, defined once: the study writes it, the store keys on it, the report groups by it.

A cell is one run's measurement of one configuration (column type, index and its build arguments,
query arguments, iterative scan, access arm) in one (scope, size bucket), at one stage of the study
(`screening`: the whole grid; `confirmation`: the leading candidates again, with more queries).
"""

from __future__ import annotations

import json
from typing import Any

from dimbench.grid import Build, QuerySetting

STAGES = ("screening", "confirmation")
CELL_FIELDS = (
    "run_id",
    "stage",
    "column_type",
    "index",
    "build_params",
    "query_params",
    "access",
    "iterative_scan",
    "scope",
    "bucket",
)


def cell_fields(
    run_id: str, stage: str, build: Build, setting: QuerySetting, access: str, scope: str, bucket: str
) -> dict[str, Any]:
    """What identifies a cell: one line of measurements.jsonl per distinct value."""
    values = (
        run_id,
        stage,
        build.column_type,
        build.index,
        dict(sorted(build.params.items())),
        dict(sorted(setting.params.items())),
        access,
        setting.iterative_scan,
        scope,
        bucket,
    )
    return dict(zip(CELL_FIELDS, values, strict=True))


def cell_key(row: dict[str, Any]) -> str:
    return "|".join(json.dumps(row[f], sort_keys=True, separators=(",", ":")) for f in CELL_FIELDS)
