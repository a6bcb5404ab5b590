"""The SQL a team applies to deploy a configuration: its index, its query settings, its search call."""

from __future__ import annotations

import json
from typing import Any

from dimbench.evidence.rule import (
    Candidate,
)
from dimbench.study import designs
from dimbench.study.configs import Build
from dimbench.vocabulary import COLUMN_TYPES, DESIGNS, OPCLASS, QUERY_GUC, column_text

GUC = QUERY_GUC  # query argument -> the setting it is

SIGNATURE = "public.match_document_chunks(extensions.vector, integer, uuid[], integer, boolean)"


def design_source(design: str) -> str:
    """Where a design's module sits in the checkout (read from the module, so a move cannot stale it)."""
    return "bench/" + type(designs.get(design)).__module__.replace(".", "/") + ".py"


def index_sql(c: Candidate, measured: Any = None) -> list[str]:
    """The index, the design's own structures and search function (its measured value, routed's T,
    substituted), then the query settings: the order a team applies them in (`create or replace
    function` resets a function's settings, so they come last)."""
    index, settings = _shared_index_sql(c)
    design = c.config.design
    if not DESIGNS[design].installs:
        return index + settings
    build = Build(c.config.column_type, c.config.index, json.loads(c.config.build_params))
    script = designs.get(design).script(build, measured)
    if not script:
        return [
            f"-- design `{design}`: its structures and search function are {design_source(design)}"
            " (install() is the migration; its match_document_chunks replaces public's)",
            *index,
            *settings,
        ]
    measured_name = designs.get(design).MEASURED
    value = (
        f", {measured_name} = {measured} (measured at this query setting)"
        if measured_name and measured is not None
        else ""
    )
    return [
        *index,
        f"-- design `{design}`{value}: its structures, and its search function in place of public's",
        *script,
        *settings,
    ]


def _shared_index_sql(c: Candidate) -> tuple[list[str], list[str]]:
    """(the vector index, the query settings scoped to the search function)."""
    build = json.loads(c.config.build_params)
    query = json.loads(c.config.query_params)
    column = column_text(c.config.column_type)
    opclass = f"extensions.{OPCLASS[COLUMN_TYPES[c.config.column_type][0]]}"
    lines = []
    if c.config.index == "exact":
        lines.append(
            "-- no vector index: the workspace_id btree (document_chunks_document_idx) serves the search"
        )
    else:
        with_ = ", ".join(f"{k} = {v}" for k, v in build.items())
        lines += [
            f"create index concurrently if not exists document_chunks_{c.config.column_type}_{c.config.index}_idx",
            f"  on public.document_chunks using {c.config.index} ({column} {opclass})"
            + (f" with ({with_});" if with_ else ";"),
        ]
    settings = [f"{GUC[k]} = {v}" for k, v in query.items() if k in GUC]
    if c.config.index != "exact":
        settings.append(f"{c.config.index}.iterative_scan = '{c.config.iterative_scan}'")
    scoped = []
    if settings:
        scoped.append(
            "-- query settings scoped to the search function (not to every statement the role runs):"
        )
        scoped += [f"alter function {SIGNATURE} set {s};" for s in settings]
        scoped.append("-- or, for every request PostgREST makes as a signed-in user:")
        scoped += [f"-- alter role authenticated set {s};" for s in settings]
    return lines, scoped


def call_sql(c: Candidate) -> str:
    dim = 768 if c.config.column_type == "vector768" else 1536
    half = ", half_precision => true" if c.config.column_type.startswith("halfvec") else ""
    filt = (
        "filter_workspace_ids => :the_users_workspace_ids, "
        if c.config.access in ("rls_filter", "service")
        else ""
    )
    return f"select * from public.match_document_chunks(:query_embedding, 10, {filt}embedding_dim => {dim}{half});"
