"""How a choice holds as the corpus grows: the rule applied at each size of a scale profile's runs.

A scale results directory holds one run per corpus size (same grid). For a configuration: at which
sizes it meets the rule; "holds up to N" is the largest size up to which it meets it at every measured
size. The projection to 10M chunks is a straight line through log(p95) against log(N) — labelled a
projection wherever it is shown, never a measurement.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from dimbench.evidence.results import Results
from dimbench.evidence.rule import Candidate, Config, Decision, decide

PROJECT_TO = 10_000_000  # the size the records project to (labelled a projection)


def corpus_size(run: dict[str, Any]) -> int | None:
    counts = (run.get("corpus") or {}).get("counts") or {}
    return counts.get("chunks") or (run.get("corpus") or {}).get("chunks")


class ScalePoint(NamedTuple):
    """One followed configuration at one corpus size (None: not measured there)."""

    chunks: int
    recall: float | None  # worst-bucket mean recall
    p95: float | None  # worst cell's p95 ms
    lower: float | None  # lowest lower bound of any cell's 95 % recall interval
    upper: float | None  # lowest upper bound: the band the rule judges against the target


def project(points: list[tuple[int, float]], to: int = PROJECT_TO, log_y: bool = True) -> float | None:
    """Least-squares line through (log N, log y) — or (log N, y) when not log_y, as for a recall that
    falls by about as much per tenfold N — evaluated at `to`: a projection, not a measurement."""
    usable = [
        (math.log(n), math.log(y) if log_y else y)
        for n, y in points
        if n > 0 and y is not None and (y > 0 or not log_y)
    ]
    if len(usable) < 2:
        return None
    mx = sum(x for x, _ in usable) / len(usable)
    my = sum(y for _, y in usable) / len(usable)
    sxx = sum((x - mx) ** 2 for x, _ in usable)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in usable) / sxx
    value = my + slope * (math.log(to) - mx)
    return math.exp(value) if log_y else value


def project_recall(points: list[tuple[int, float]], to: int = PROJECT_TO) -> float | None:
    """A recall at `to` on a straight line against log N, kept within [0, 1]: a projection."""
    value = project(points, to, log_y=False)
    return None if value is None else min(1.0, max(0.0, value))


def sizes(results: Results) -> list[tuple[int, str]]:
    """(chunks, run id) of each run, smallest first; [] unless at least two sizes."""
    found = sorted((int(corpus_size(r) or 0), r["run_id"]) for r in results.runs if corpus_size(r))
    return found if len({n for n, _ in found}) > 1 else []


# The rule at one size, once per Results: a scale record follows a dozen configurations across the
# sizes, and each follow would otherwise decide every size again. Keyed by id(), holding the Results
# so that the id cannot be reused while the entry lives.
_decided: dict[int, tuple[Results, dict[str, Decision]]] = {}


def decision_at(results: Results, run_id: str) -> Decision:
    held = _decided.get(id(results))
    if held is None or held[0] is not results:
        held = _decided[id(results)] = (results, {})
    if run_id not in held[1]:
        held[1][run_id] = decide(results, run_id=run_id)
    return held[1][run_id]


@dataclass
class AtSize:
    chunks: int
    run_id: str
    candidate: Candidate | None  # None: the configuration was not measured at this size


def follow(results: Results, config: Config) -> list[AtSize]:
    """The configuration at each size: its confirmation when confirmed there, else its screening (the
    candidate's stage and n_queries say which)."""
    out = []
    for chunks, run_id in sizes(results):
        out.append(AtSize(chunks, run_id, decision_at(results, run_id).find(config)))
    return out


def followed(first: Decision, chunks: int) -> dict[str, Candidate]:
    """The lines a scale record and its figure follow across the sizes: pgvector's defaults, the rule's
    choice at the smallest size and each design's best there (a configuration once, under its first
    label)."""
    from dimbench.report.designs import deployable

    out: dict[str, Candidate] = {}
    for label, c in deployable(first).items():
        if all(c.config != seen.config for seen in out.values()):
            out[f"the rule's choice at {chunks:,}" if label == "the decision" else label] = c
    return out


def verdict(candidate: Candidate | None, recall_target: float) -> str:
    """meets | fails | undecided | not measured at one size.

    "undecided": the rule does not pass it only because a recall interval straddles the target — more
    queries could settle it either way (100 a cell put the lower bound of a 0.988 mean at 0.942), so the
    record must not call it a failure either."""
    if candidate is None:
        return "not measured"
    if candidate.qualifies:
        return "meets"
    straddles = candidate.min_recall_upper is not None and candidate.min_recall_upper >= recall_target
    if candidate.why_not.startswith("recall") and straddles and not candidate.failed_queries:
        return "undecided"
    return "fails"


def not_failed_up_to(points: list[AtSize], recall_target: float) -> int | None:
    """The largest size up to which no measured size showed the configuration failing (it met the rule
    or its recall interval straddled the target); None if it failed (or was not measured) at the smallest."""
    return _reach(points, lambda c: verdict(c, recall_target) in ("meets", "undecided"))


def _reach(points: list[AtSize], holds: Callable[[Candidate | None], bool]) -> int | None:
    """The largest size before the first one where `holds` is false; None if false at the smallest."""
    reached = None
    for p in points:
        if not holds(p.candidate):
            break
        reached = p.chunks
    return reached


def holds_up_to(points: list[AtSize]) -> int | None:
    """The largest size up to which the configuration met the rule at every measured size; None if it
    failed (or was not measured) at the smallest."""
    return _reach(points, lambda c: c is not None and c.qualifies)


def projected_p95(points: list[AtSize]) -> float | None:
    measured = [
        (p.chunks, p.candidate.worst_p95_ms)
        for p in points
        if p.candidate is not None and p.candidate.worst_p95_ms is not None
    ]
    return project(measured, PROJECT_TO)  # type: ignore[arg-type]


def projected_recall(points: list[AtSize]) -> float | None:
    """The worst-bucket mean recall at 10M on a straight line against log N (clipped to [0, 1]); the
    means only, so no interval: a projection, never a verdict."""
    measured = [
        (p.chunks, p.candidate.min_recall)
        for p in points
        if p.candidate is not None and p.candidate.min_recall is not None
    ]
    return project_recall(measured)  # type: ignore[arg-type]


def choices(results: Results) -> list[tuple[int, Candidate | None, int]]:
    """(chunks, the rule's choice, size of its tie set) per size."""
    out = []
    for chunks, run_id in sizes(results):
        decision = decision_at(results, run_id)
        out.append((chunks, decision.chosen, len(decision.tied)))
    return out


def published_scale() -> Results | None:
    """results/scale of the checkout, if published."""
    from dimbench.report.common import published_record

    return published_record("scale")


def describe(points: list[AtSize]) -> list[dict[str, Any]]:
    return [
        {
            "chunks": p.chunks,
            "measured": p.candidate is not None,
            "qualifies": p.candidate.qualifies if p.candidate else None,
            "min_recall": p.candidate.min_recall if p.candidate else None,
            "worst_p95_ms": p.candidate.worst_p95_ms if p.candidate else None,
            "why_not": p.candidate.why_not if p.candidate else "not measured",
        }
        for p in points
    ]
