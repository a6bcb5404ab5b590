"""The designs the study compares: one module each, exporting `DESIGN` (see base.Design).

`get(name)` finds a design by its word in the vocabulary; `bring_up` is the one way any stage
(screening, confirmation, the side channel) puts a design in place for a build.
"""

from __future__ import annotations

import importlib
from typing import Any

import psycopg

from dimbench.study import index
from dimbench.study.configs import Build
from dimbench.study.designs.base import Design, Installed
from dimbench.vocabulary import DESIGNS

__all__ = ["Design", "Installed", "bring_up", "get", "shared_index_for"]


def get(name: str) -> Design:
    if name not in DESIGNS:
        raise KeyError(name)
    return importlib.import_module(f"dimbench.study.designs.{name}").DESIGN


def bring_up(
    conn: psycopg.Connection, design: Design, build: Build, params: dict[str, Any], *, progress: bool = False
) -> tuple[Installed, index.BuildResult | None]:
    """Put `design` in place for `build`: the shared index as the design needs it — dropped for a design
    that must not see it, built (unless it stands) for one that searches it — then the design itself.
    Returns what the install cost and the index build it needed (None: it stood, or none is needed)."""
    built = shared_index_for(conn, design, build, progress=progress)
    return design.install(conn, build, params), built


def shared_index_for(
    conn: psycopg.Connection, design: Design, build: Build, *, progress: bool = False
) -> index.BuildResult | None:
    """The shared index as `design` needs it on `build`'s column type: dropped for a design that must not
    see it, built (unless it stands) for one that searches it. Returns the build it needed, if any."""
    if design.layout.excludes_shared_index:
        index.drop_study_indexes(conn, column_type=build.column_type)
    elif design.layout.searches_shared_index and build.index != "exact":
        if index.index_name(build) not in index.study_indexes(conn):
            index.drop_study_indexes(conn, column_type=build.column_type)
            return index.build(conn, build, progress=progress)
    return None


def remove_all(conn: psycopg.Connection) -> None:
    """Take every design away (what a killed run may have left installed)."""
    for name in DESIGNS:
        get(name).remove(conn)
