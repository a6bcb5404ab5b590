"""The study's value objects: an index build, a query setting, the arm a request takes, and a cell.

A cell is one configuration measured in one (scope, size bucket): its identity is the vocabulary's
CELL_FIELDS, written by the study, keyed on by the measurement store and grouped by the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from dimbench.vocabulary import (
    CELL_FIELDS,
    COLUMN_EMBEDDING,
    COLUMN_SOURCE,
    COLUMN_TYPES,
    DEFAULT_DESIGN,
    OPCLASS,
    cell_key,
)


@dataclass(frozen=True)
class Build:
    """One index build: which column, which index kind, which build arguments."""

    column_type: str  # vector768 | vector1536 | halfvec1536
    index: str  # exact | ivfflat | hnsw
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def dim(self) -> int:
        return COLUMN_TYPES[self.column_type][1]

    @property
    def embedding(self) -> int | str:
        """Its key in a StudyQuery's vectors and truth: the dim for 3-small's columns, "ada" for ada's."""
        name = COLUMN_EMBEDDING[self.column_type]
        return name if name == "ada" else int(name)

    @property
    def vector_type(self) -> str:
        return COLUMN_TYPES[self.column_type][0]

    @property
    def key(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.column_type}/{self.index}({args})"

    def opclass(self) -> sql.Composable:
        """The cosine operator class an index on this column type uses."""
        return sql.SQL("extensions.") + sql.SQL(OPCLASS[self.vector_type])

    def expression(self, alias: str | None = None) -> sql.Composable:
        """The stored vector as searches compare it and indexes cover it (halfvec1536: the cast)."""
        column, cast = COLUMN_SOURCE[self.column_type]
        name = sql.Identifier(alias, column) if alias else sql.Identifier(column)
        return sql.SQL("({}::extensions.{})").format(name, sql.SQL(cast)) if cast else name


@dataclass(frozen=True)
class QuerySetting:
    params: dict[str, Any] = field(hash=False)
    iterative_scan: str

    @property
    def key(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"({args})/{self.iterative_scan}"


@dataclass(frozen=True)
class Arm:
    """How one request reaches the rows: the access arm, on one build, through one design's search.

    `role` overrides the arm's database role (the tests use it to break RLS on purpose)."""

    access: str
    build: Build
    k: int
    design: str = DEFAULT_DESIGN
    role: str | None = None


@dataclass(frozen=True)
class Cell:
    """One configuration (design, build, query setting, access arm) in one (scope, size bucket)."""

    build: Build
    setting: QuerySetting
    access: str
    scope: str
    bucket: str
    design: str = DEFAULT_DESIGN
    design_params: dict[str, Any] = field(default_factory=dict, hash=False)

    def fields(self, run_id: str, stage: str) -> dict[str, Any]:
        """What identifies the cell in one run at one stage: one line of measurements.jsonl each."""
        values = (
            run_id,
            stage,
            self.design,
            dict(sorted(self.design_params.items())),
            self.build.column_type,
            self.build.index,
            dict(sorted(self.build.params.items())),
            dict(sorted(self.setting.params.items())),
            self.access,
            self.setting.iterative_scan,
            self.scope,
            self.bucket,
        )
        return dict(zip(CELL_FIELDS, values, strict=True))

    def key(self, run_id: str, stage: str) -> str:
        return cell_key(self.fields(run_id, stage))
