"""A cell's identity: the study writes it, the store keys on it, the report groups by it.

The fields are the vocabulary's (dimbench.vocabulary.CELL_FIELDS): one run's measurement of one
configuration (design and its parameters, column type, index and its build arguments, query arguments,
iterative scan, access arm) in one (scope, size bucket), at one stage of the study (`screening`: the
whole grid; `confirmation`: the leading candidates again, with more queries).
"""

from __future__ import annotations

from typing import Any

from dimbench.study.grid import Build, QuerySetting
from dimbench.vocabulary import CELL_FIELDS, DEFAULT_DESIGN, STAGES, cell_key

__all__ = ["CELL_FIELDS", "STAGES", "cell_fields", "cell_key"]


def cell_fields(
    run_id: str,
    stage: str,
    build: Build,
    setting: QuerySetting,
    access: str,
    scope: str,
    bucket: str,
    design: str = DEFAULT_DESIGN,
    design_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What identifies a cell: one line of measurements.jsonl per distinct value."""
    values = (
        run_id,
        stage,
        design,
        dict(sorted((design_params or {}).items())),
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
