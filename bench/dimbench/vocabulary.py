"""The study's vocabulary, defined once: the study writes these names, the report reads them back.

Column types, index kinds and their arguments, access arms, scopes, size buckets, designs and a cell's
identity. The grid parser validates against this module, the study measures it, the decision rule and
the plots group by it. A new design is a module in dimbench/study/designs plus its name in DESIGNS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# column type -> (pgvector type, dimensions)
COLUMN_TYPES = {
    "vector768": ("vector", 768),
    "vector1536": ("vector", 1536),
    "halfvec1536": ("halfvec", 1536),
    "ada_vector1536": ("vector", 1536),  # text-embedding-ada-002 (the RAG side's model), its own column
    "ada_halfvec1536": ("halfvec", 1536),
}
# column type -> (the stored column it reads, the cast searches and indexes apply to it, or None)
COLUMN_SOURCE = {
    "vector768": ("embedding_768", None),
    "vector1536": ("embedding_1536", None),
    "halfvec1536": ("embedding_1536", "halfvec(1536)"),
    # study scaffolding, not the harmonized schema: the loader adds it when the corpus carries ada vectors
    "ada_vector1536": ("embedding_ada", None),
    "ada_halfvec1536": ("embedding_ada", "halfvec(1536)"),
}
# the stored columns of the harmonized schema (public.match_document_chunks searches these; any other
# column type's `shared` design searches through a function of its own, designs/shared.py)
HARMONIZED_COLUMNS = ("embedding_768", "embedding_1536")
# column type -> the corpus column (corpus/columns.py) its vectors, query vectors and exact ground truth
# come from: each column type's truth is its own model's
COLUMN_EMBEDDING = {
    "vector768": "768",
    "vector1536": "1536",
    "halfvec1536": "1536",
    "ada_vector1536": "ada",
    "ada_halfvec1536": "ada",
}
# pgvector type -> the cosine operator class its indexes use (schema extensions)
OPCLASS = {"vector": "vector_cosine_ops", "halfvec": "halfvec_cosine_ops"}


def column_text(column_type: str) -> str:
    """The indexed expression of a column type as SQL text (for the record's SQL a team applies)."""
    column, cast = COLUMN_SOURCE[column_type]
    return f"({column}::extensions.{cast})" if cast else column


# Bytes per row of the vector column in the end state (one column; halfvec stored as a halfvec column).
COLUMN_BYTES = {
    "vector768": 4 * 768 + 8,
    "vector1536": 4 * 1536 + 8,
    "halfvec1536": 2 * 1536 + 8,
    "ada_vector1536": 4 * 1536 + 8,
    "ada_halfvec1536": 2 * 1536 + 8,
}

INDEX_KINDS = ("exact", "ivfflat", "hnsw")
ITERATIVE = {
    "exact": ("off",),
    "ivfflat": ("off", "relaxed_order"),
    "hnsw": ("off", "relaxed_order", "strict_order"),
}
BUILD_KEYS = {"exact": (), "ivfflat": ("lists",), "hnsw": ("m", "ef_construction")}
QUERY_KEYS = {"exact": (), "ivfflat": ("probes",), "hnsw": ("ef_search", "max_scan_tuples")}
# The ranges pgvector accepts for each argument (its GUC and reloption limits).
PARAM_RANGES = {
    "lists": (1, 32768),
    "m": (2, 100),
    "ef_construction": (4, 1000),
    "probes": (1, 32768),
    "ef_search": (1, 1000),
    "max_scan_tuples": (1, 2**31 - 1),
}
OPTIONAL_QUERY_KEYS = {"max_scan_tuples"}  # absent: pgvector's default
# A query argument that only matters with iterative scan on (off is measured at its first value only).
ITERATIVE_ONLY = {"max_scan_tuples"}
QUERY_GUC = {
    "ef_search": "hnsw.ef_search",
    "probes": "ivfflat.probes",
    "max_scan_tuples": "hnsw.max_scan_tuples",
}
PGVECTOR_DEFAULTS = {
    "hnsw.ef_search": "40",
    "hnsw.iterative_scan": "off",
    "hnsw.max_scan_tuples": "20000",
    "ivfflat.probes": "1",
    "ivfflat.iterative_scan": "off",
}

# Access arms: how a request reaches the rows.
#   service     service_role (bypasses RLS) with the app's explicit `workspace_id = any(…)` filter
#   rls_seed    authenticated under the seed's policy (unwrapped auth.uid(), IN-subquery, FOR ALL)
#   rls_docs    authenticated under Supabase's "RAG with permissions" policy form (membership subquery)
#   rls         authenticated under this project's policies, no filter: RLS alone decides
#   rls_filter  this project's policies plus the explicit filter in the query
ACCESS_ARMS = ("service", "rls_seed", "rls_docs", "rls", "rls_filter")
ARM_ROLE = {arm: ("service_role" if arm == "service" else "authenticated") for arm in ACCESS_ARMS}
FILTERED = {"service": True, "rls_seed": False, "rls_docs": False, "rls": False, "rls_filter": True}
POLICY_VARIANTS = ("rls_seed", "rls_docs")  # arms measured with another select policy swapped in
RLS_ARMS = ("rls", "rls_filter", "rls_seed", "rls_docs")
CHOOSABLE = ("rls", "rls_filter")  # the others are measured as what users copy, never chosen

SCOPES = ("workspace", "all")
# RLS alone decides what a user sees, so the arms without an explicit filter are measured over all of
# the user's workspaces; a one-workspace query needs the filter (service, rls_filter).
SCOPES_BY_ACCESS = {arm: (SCOPES if FILTERED[arm] else ("all",)) for arm in ACCESS_ARMS}
BUCKETS = ("tiny", "small", "medium", "large")

# Designs: the table layout and search route a request goes through (dimbench/study/designs/<name>.py).
#   shared       one approximate index over all chunks (the harmonized schema as migrated)
#   routed       the search function routes per call: exact below T visible rows, the index above
#   probed       routed's rule, the rows counted by a bounded probe at call time (nothing on the write path)
#   partial      one partial index per tenant above a size threshold, the rest exact
#   bq_rerank    hnsw over binary_quantize(v), candidates reranked by the full vector
#   partitioned  document_chunks hash-partitioned by workspace_id, one index per partition
#   inline       the end-state layout: one embedding column, stored inline (after the migration)


@dataclass(frozen=True)
class Layout:
    """What a design's numbers include, as the study measures them and the report reads them back."""

    searches_shared_index: bool = False  # its vector path is the study's own index: storage and install
    #                                      cost include that index (shared, routed)
    excludes_shared_index: bool = False  # its own indexes cover the shared index's expression: measured
    #                                      with the shared index dropped (partial)
    own_table: bool = False  # searches its own copy of the chunks: the policy variants swapped in on
    #                          public.document_chunks do not apply to it
    installs: bool = True  # has structures of its own to install, time and size (shared: none)


DESIGNS: dict[str, Layout] = {
    "shared": Layout(searches_shared_index=True, installs=False),
    "routed": Layout(searches_shared_index=True),
    "probed": Layout(searches_shared_index=True),
    "partial": Layout(excludes_shared_index=True),
    "bq_rerank": Layout(),
    "partitioned": Layout(own_table=True),
    "inline": Layout(own_table=True),
}
DEFAULT_DESIGN = "shared"

STAGES = ("screening", "confirmation")
# A cell: one run's measurement of one configuration in one (scope, size bucket) at one stage.
CELL_FIELDS = (
    "run_id",
    "stage",
    "design",
    "design_params",
    "column_type",
    "index",
    "build_params",
    "query_params",
    "access",
    "iterative_scan",
    "scope",
    "bucket",
)
# Results written before designs existed carry neither field: they measured the shared design.
CELL_DEFAULTS: dict[str, Any] = {"design": DEFAULT_DESIGN, "design_params": {}}


def cell_value(row: dict[str, Any], name: str) -> Any:
    return row[name] if name in row else CELL_DEFAULTS[name]


def cell_key(row: dict[str, Any]) -> str:
    return "|".join(
        json.dumps(cell_value(row, f), sort_keys=True, separators=(",", ":")) for f in CELL_FIELDS
    )
