"""The designs the study compares: one module each, exporting `DESIGN` (see base.Design).

`get(name)` finds a design by its word in the vocabulary; `bring_up` is the one way any stage
(screening, confirmation, the side channel, the deployment stage) puts a design in place for a build,
`put_away` the one way it is done with it, and `follow` how a standing copy takes public's writes.
"""

from __future__ import annotations

import importlib
from typing import Any

import psycopg

from dimbench.study import index
from dimbench.study.configs import Build
from dimbench.study.designs import standing
from dimbench.study.designs.base import Design, Installed
from dimbench.vocabulary import DESIGNS

__all__ = ["Design", "Installed", "bring_up", "follow", "get", "put_away", "shared_index_for"]


def get(name: str) -> Design:
    if name not in DESIGNS:
        raise KeyError(name)
    return importlib.import_module(f"dimbench.study.designs.{name}").DESIGN


def bring_up(
    conn: psycopg.Connection, design: Design, build: Build, params: dict[str, Any], *, progress: bool = False
) -> tuple[Installed, index.BuildResult | None]:
    """Put `design` in place for `build`: the shared index as the design needs it — dropped for a design
    that must not see it, built (unless it stands) for one that searches it — then the design itself.
    Returns what the install cost and the index build it needed (None: it stood, or none is needed).
    A design on its own copy that stands for the same build and parameters, still a copy of public as it
    is, is reused (`Installed.reused`; see designs/standing.py)."""
    built = shared_index_for(conn, design, build, progress=progress)
    if design.layout.own_table:
        found = standing.reusable(conn, design, build, params)
        if found is not None:
            return found, built
    installed = design.install(conn, build, params)
    if design.layout.own_table:
        standing.record(conn, design, build, params, installed)
    return installed, built


def put_away(conn: psycopg.Connection, design: Design) -> None:
    """A stage is done with `design`: a design on its own copy stays for the next stage to reuse (it
    touches nothing of public's); any other is removed (its indexes, triggers or policies on public would
    change what the next measurement sees). The run removes every design at its end (`remove_all`)."""
    if not design.layout.own_table:
        design.remove(conn)


def follow(conn: psycopg.Connection, design: Design, build: Build) -> None:
    """After writes to public.document_chunks: the design's copy takes them (`Design.follow`) and still
    stands for public as it now is."""
    design.follow(conn, build)
    if design.layout.own_table:
        standing.followed(conn, design)


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
