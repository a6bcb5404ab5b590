"""Racing: which configurations screening may stop measuring, and why — only on an interval that
excludes them, never on a mean.

After each round of screening queries a configuration is dropped when
  * some cell's recall interval lies wholly below the target (its **upper** bound is under it): the rule,
    which passes a configuration only on every cell's lower bound, can never pass it; or
  * some cell's nDCG@10 shortfall against the best option lies wholly beyond the rule's quality
    tolerance (its upper bound under −tolerance): the rule can never pass it either; or
  * its worst cell's p95 interval lies wholly above the p95 interval of the best configuration the rule
    could still choose (its **lower** bound is over that one's upper bound): it can no longer tie with
    it, and the rule chooses among those that tie with the best.
The reference is the best configuration *still in the race*, on its current intervals: one dropped
earlier cannot be chosen, so it is never a reference (at 1M chunks a chain of drops against references
that were themselves dropped later had left nothing in the race). A reference must not be one the
rule may still reject for quality while the dropped configuration escapes: it either passes the quality
tolerance already (its shortfall's lower bound within it in every cell) or searches the same stored
embedding. Otherwise a fast 768 configuration that confirmation later rejects for quality would have
raced every 1536 configuration out, and nothing would be left to choose. A p95 interval over fewer than
MIN_P95_QUERIES queries is little more than the slowest answer, so no one is dropped on latency before
both sides have that many.

A policy variant (rls_seed, rls_docs: what teams copy, never chosen) is in the race for no choice of its
own: it is measured to show what that policy costs at a configuration the rule may choose. It leaves with
its twin — the same configuration under `rls` — when that one is dropped ("twin"), besides on its own
intervals as above. Before this, variants tied with the leaders on latency whatever became of their twins
and kept 13–23 configurations of shared in every round (a quarter of small's screening queries).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from typing import Any

from dimbench.evidence.rule import QUALITY_TOLERANCE, Config, config_of, p95
from dimbench.vocabulary import CHOOSABLE, COLUMN_SOURCE, POLICY_VARIANTS

MIN_P95_QUERIES = 5


@dataclass(frozen=True)
class Drop:
    """Why a configuration left the race: the interval that excluded it, when, after how many queries."""

    label: str
    design: str
    access: str
    why: str  # "recall" | "quality" | "latency" | "twin"
    cell: str  # the (scope/bucket) cell whose interval excluded it (twin: its own worst p95 cell)
    interval: list[float]
    reference: list[float] | None  # latency: the best configuration's worst-cell p95 interval
    reference_label: str | None  # latency: that configuration; twin: the twin under `rls` that left
    round: int
    queries: int  # queries a cell of it had been asked when it was dropped

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Standing:
    """A configuration's position after a round: its weakest recall cell and its worst p95 cell."""

    config: Config
    recall_cell: str
    recall_interval: list[float]
    p95_cell: str
    p95: float
    p95_interval: list[float]
    queries: int
    quality_cell: str = ""
    quality_interval: list[float] | None = None  # the lowest upper bound of a cell's nDCG@10 shortfall
    quality_floor: float | None = None  # the lowest lower bound of a cell's nDCG@10 shortfall

    @property
    def embedding(self) -> str:
        """The stored embedding it searches (halfvec1536 is embedding_1536 cast)."""
        return COLUMN_SOURCE[self.config.column_type][0]


def standings(rows: list[dict[str, Any]]) -> list[Standing]:
    """Every configuration measured in `rows` (one stage of one run) with complete intervals."""
    groups: dict[Config, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(config_of(row), []).append(row)
    out = []
    for config, cells in groups.items():
        if any(
            r.get("recall_ci95") is None or p95(r) is None or r.get("latency_p95_ci95") is None for r in cells
        ):
            continue
        weak = min(cells, key=lambda r: (r["recall_ci95"][1], r["scope"], r["bucket"]))
        slow = max(cells, key=lambda r: (p95(r), r["scope"], r["bucket"]))
        gaps = [r for r in cells if r.get("ndcg10_gap_ci95") is not None]
        short = min(gaps, key=lambda r: (r["ndcg10_gap_ci95"][1], r["scope"], r["bucket"])) if gaps else None
        out.append(
            Standing(
                config,
                f"{weak['scope']}/{weak['bucket']}",
                list(weak["recall_ci95"]),
                f"{slow['scope']}/{slow['bucket']}",
                float(p95(slow)),  # type: ignore[arg-type]
                list(slow["latency_p95_ci95"]),
                min(r["n_queries"] for r in cells),
                f"{short['scope']}/{short['bucket']}" if short else "",
                list(short["ndcg10_gap_ci95"]) if short else None,
                min(r["ndcg10_gap_ci95"][0] for r in gaps) if gaps else None,
            )
        )
    return out


def judge(
    rows: list[dict[str, Any]],
    recall_target: float,
    round_number: int,
    arms: tuple[str, ...] = CHOOSABLE,
    quality_tolerance: float = QUALITY_TOLERANCE,
    out_of_race: Collection[str] = (),
    latency_margin: float = 0.0,
) -> list[Drop]:
    """The configurations of `rows` that the intervals exclude after this round (see the module).
    `out_of_race`: the labels dropped in earlier rounds — neither judged again nor a reference (a
    dropped configuration cannot be chosen, and its interval is as stale as the round it left in).
    `latency_margin`: a latency drop needs the p95 lower bound past the reference's upper bound × (1 +
    margin) — screening measures configurations minutes and installs apart, and an interval does not
    cover the machine's drift between them."""
    found = [s for s in standings(rows) if s.config.label not in out_of_race]
    out: list[Drop] = []
    alive = []
    for s in found:
        if s.recall_interval[1] < recall_target:
            out.append(_drop(s, "recall", s.recall_cell, s.recall_interval, None, round_number))
        elif s.quality_interval is not None and s.quality_interval[1] < -quality_tolerance:
            out.append(_drop(s, "quality", s.quality_cell, s.quality_interval, None, round_number))
        else:
            alive.append(s)
    choosable = [s for s in alive if s.config.access in arms and s.queries >= MIN_P95_QUERIES]
    for s in alive:
        best = _reference(s, choosable, quality_tolerance)
        bound = best.p95_interval[1] * (1 + latency_margin) if best else None
        if best and bound is not None and s.queries >= MIN_P95_QUERIES and s.p95_interval[0] > bound:
            out.append(_drop(s, "latency", s.p95_cell, s.p95_interval, best, round_number))
    gone = set(out_of_race) | {d.label for d in out}
    for s in alive:
        twin = replace(s.config, access="rls").label
        if s.config.access in POLICY_VARIANTS and s.config.label not in gone and twin in gone:
            out.append(
                replace(
                    _drop(s, "twin", s.p95_cell, s.p95_interval, None, round_number), reference_label=twin
                )
            )
    return out


def _reference(s: Standing, choosable: list[Standing], quality_tolerance: float) -> Standing | None:
    """The fastest configuration `s` may be dropped against (see the module): one the quality rule
    already passes, or one on the same stored embedding (its quality stands or falls with s's)."""
    safe = [
        c
        for c in choosable
        if c.embedding == s.embedding or c.quality_floor is None or c.quality_floor >= -quality_tolerance
    ]
    return min(safe, key=lambda c: (c.p95, c.config.label)) if safe else None


def _drop(
    s: Standing, why: str, cell: str, interval: list[float], best: Standing | None, round_number: int
) -> Drop:
    return Drop(
        s.config.label,
        s.config.design,
        s.config.access,
        why,
        cell,
        interval,
        best.p95_interval if best else None,
        best.config.label if best else None,
        round_number,
        s.queries,
    )
