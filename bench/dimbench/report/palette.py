"""One colour per access arm, per design and per column type, fixed: every figure of both profiles
imports these, so an arm (or design) keeps its colour from one PNG to the next (matplotlib's default
cycle would hand out colours in whatever order a figure happens to draw its lines).

Colours are the Okabe–Ito set (distinguishable with the common colour-vision deficiencies).
"""

from __future__ import annotations

ARM = {
    "service": "#000000",
    "rls_seed": "#E69F00",
    "rls_docs": "#CC79A7",
    "rls": "#0072B2",
    "rls_filter": "#009E73",
}
DESIGN = {
    "shared": "#0072B2",
    "routed": "#D55E00",
    "probed": "#009E73",
    "partial": "#CC79A7",
    "bq_rerank": "#E69F00",
    "partitioned": "#56B4E9",
    "inline": "#882255",
}
COLUMN = {
    "vector768": "#0072B2",
    "vector1536": "#D55E00",
    "halfvec1536": "#009E73",
    "ada_vector1536": "#CC79A7",
    "ada_halfvec1536": "#E69F00",
}
INDEX_LINE = {"exact": ":", "ivfflat": "--", "hnsw": "-"}  # an index is a line style, a column a colour
# A marker per column too: lines at the same recall (often 1.0) then stay visible under each other.
COLUMN_MARKER = {
    "vector768": "o",
    "vector1536": "s",
    "halfvec1536": "D",
    "ada_vector1536": "^",
    "ada_halfvec1536": "v",
}
UNKNOWN = "#999999"

CHOSEN = "#000000"  # the rule's choice: black, thick, on top in every figure that shows it
DEFAULTS = "#777777"  # pgvector's defaults: grey, dotted
WITHOUT = "#999999"  # a side-channel pass without the foreign cluster (open marker)


def arm(name: str) -> str:
    return ARM.get(name, UNKNOWN)


def design(name: str) -> str:
    return DESIGN.get(name, UNKNOWN)


def column(name: str) -> str:
    return COLUMN.get(name, UNKNOWN)


def index_line(name: str) -> str:
    return INDEX_LINE.get(name, "-.")


def column_marker(name: str) -> str:
    return COLUMN_MARKER.get(name, "^")
