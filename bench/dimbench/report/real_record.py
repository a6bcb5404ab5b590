"""DECISION.md's "On real data": the published real-corpus run (results/real, `bench/grids/real.toml`)
beside this record's synthetic one — the rule's choice in each, pgvector's defaults per bucket, routed's
T and each design's best. Absent when no real record is published (as "how far it holds" reads scale).

The real corpus is embedded by one 384-d model zero-padded into every column, so its 768 and 1536 are one
geometry: the real run answers the tenancy question, and the dimension question stays the synthetic one's.
"""

from __future__ import annotations

from dimbench.evidence.results import Results
from dimbench.evidence.rule import Candidate, Decision, decide_runs
from dimbench.report.designs import deployable, threshold_of
from dimbench.vocabulary import BUCKETS

PROFILE = "real"


def published_real() -> Results | None:
    """results/real of the checkout, if published."""
    from dimbench.report.common import published_record

    return published_record(PROFILE)


def _recall(c: Candidate | None, bucket: str) -> str:
    value = None if c is None else c.recall_by_bucket.get(bucket)
    return "not measured" if value is None else f"{value:.3f}"


def _p95(c: Candidate | None) -> str:
    return "not measured" if c is None or c.worst_p95_ms is None else f"{c.worst_p95_ms:.2f}"


def _label(c: Candidate | None) -> str:
    return "nothing meets the rule" if c is None else c.config.label


def real_section(results: Results, decision: Decision, real: Results | None) -> list[str]:
    """The section's lines; none without a published real record."""
    if real is None:
        return []
    real_decision = decide_runs(real).decisions[0]
    counts = (real.run.get("corpus") or {}).get("counts") or {}
    ours, theirs = deployable(decision), deployable(real_decision)
    out = [
        "## On real data",
        "",
        f"The same study on a real corpus ([results/real](../real/DECISION.md)): the docstrings of installed "
        f"Python packages, {counts.get('chunks', 'an unknown number of')} chunks in "
        f"{counts.get('workspaces', 'an unknown number of')} workspaces (one per package or stdlib module), "
        "each docstring's one-line summary asked as a held-out question, embedded with all-MiniLM-L6-v2. "
        'Its 384 dimensions are zero-padded into every column, so "768 vs 1536" there is one model\'s '
        "geometry padded: the dimension question is this record's; the real run answers tenancy.",
        "",
        f"- **The rule's choice**: here {_label(decision.chosen)}; "
        f"on real data {_label(real_decision.chosen)}.",
        "",
        "| | " + " | ".join(f"recall@10 {b} (synthetic · real)" for b in BUCKETS) + " | worst p95 ms "
        "(synthetic · real) | T (synthetic · real) |",
        "|---|" + "---|" * (len(BUCKETS) + 2),
    ]
    for name in dict.fromkeys([*ours, *theirs]):
        a, b = ours.get(name), theirs.get(name)
        out.append(
            f"| {name} | "
            + " | ".join(f"{_recall(a, x)} · {_recall(b, x)}" for x in BUCKETS)
            + f" | {_p95(a)} · {_p95(b)} | {_t(results, a)} · {_t(real, b)} |"
        )
    same = (decision.chosen and real_decision.chosen) and (
        decision.chosen.config.design == real_decision.chosen.config.design
    )
    out += [
        "",
        "- **What differs**: "
        + (
            "the same design wins on both corpora; the settings and latencies differ with the corpus's size "
            "and its tenants' spread."
            if same
            else "the two corpora's choices differ in design: the real corpus is smaller (fewer rows under "
            "each tenant, so exact search stays cheap further up) and its tenants' sizes are its owners', "
            "not the generator's."
        ),
        "",
    ]
    return out


def _t(results: Results, c: Candidate | None) -> str:
    if c is None:
        return "—"
    value = threshold_of(results, c)
    return "—" if value is None else f"{value:,}"
