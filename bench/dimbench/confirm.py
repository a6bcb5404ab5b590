"""The confirmation stage: the leading candidates of screening, measured again until each cell is decided.

Screening measures the whole grid with a few queries per cell; its intervals are wide, so the ranking
near the top is noise. Confirmation takes the configurations that could still meet the rule, and for each
(scope, bucket) cell asks all of them the same queries, **interleaved** — query by query, round-robin over
the candidates (rotating who goes first), same connection — so drift of the machine hits all alike. It
adds batches of queries until every candidate's recall interval in the cell is decided against the
target (wholly above or below it, or narrower than ±half_width) or the corpus's query pool is used up.

Candidates whose indexes can coexist (one per column) are measured in the same round; an exact-search
candidate needs its column without a vector index, so it goes to a round of its own for that column.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from dimbench import arms, index, metrics, plans
from dimbench.cells import cell_fields, cell_key
from dimbench.grid import SCOPES_BY_ACCESS, Build, Confirm, QuerySetting
from dimbench.measure import CellResult, StudyQuery, ask, measurement, recall_of
from dimbench.report.decide import CHOOSABLE, Candidate, Config, candidates
from dimbench.report.load import Results
from dimbench.results import MeasurementStore
from dimbench.settle import MaintenanceWatch

ARMS = ("rls", "rls_filter", "service")  # choosable designs and the service baseline (rls_seed: never chosen)
AT_LEAST = 5  # the best five choosable configurations are always confirmed


@dataclass(frozen=True)
class Entrant:
    """One candidate configuration, ready to be asked."""

    build: Build
    setting: QuerySetting
    access: str
    label: str

    @classmethod
    def of(cls, config: Config) -> Entrant:
        return cls(
            Build(config.column_type, config.index, json.loads(config.build_params)),
            QuerySetting(json.loads(config.query_params), config.iterative_scan),
            config.access,
            config.label,
        )


def leading(screened: list[Candidate], confirm: Confirm) -> list[Candidate]:
    """Who goes to confirmation: the configurations that could still meet the rule (no cell's recall
    interval wholly below the target).

    The rule chooses among the RLS designs (CHOOSABLE), so the places go to them: the best five, the best
    per column type, and every other one whose worst p95 is within `reach` of the best's, plus the best
    of each arm (the service baseline included) and any whose cell saw maintenance. "Best" ranks those
    whose screening mean already meets the target first (then by p95): a fast configuration that fails
    at the mean will most likely fail confirmation too. `max_candidates` caps only the within-reach
    extras; the must-haves always go.
    """
    eligible = sorted(
        (
            c
            for c in screened
            if c.config.access in ARMS
            and c.min_recall_upper is not None
            and c.min_recall_upper >= confirm.recall_target
            and c.worst_p95_ms is not None
        ),
        key=lambda c: (
            (c.min_recall or 0.0) < confirm.recall_target,
            c.worst_p95_ms,
            c.config.label,
        ),
    )
    choosable = [c for c in eligible if c.config.access in CHOOSABLE]
    if not eligible:
        return []
    must: list[Candidate] = list(choosable[:AT_LEAST])
    for key, pool in ((lambda c: c.config.column_type, choosable), (lambda c: c.config.access, eligible)):
        seen: set[str] = set()
        for c in pool:
            if key(c) not in seen:
                seen.add(key(c))
                must.append(c)
    must += [c for c in eligible if c.maintenance]
    chosen: list[Candidate] = []
    for c in must:
        if c not in chosen:
            chosen.append(c)
    if choosable:
        reach = min(c.worst_p95_ms for c in choosable) * (1 + confirm.reach)
        cap = max(confirm.max_candidates, len(chosen))
        for c in choosable:
            if len(chosen) >= cap:
                break
            if c not in chosen and c.worst_p95_ms <= reach:
                chosen.append(c)
    return sorted(chosen, key=lambda c: (c.worst_p95_ms, c.config.label))


def rounds(entrants: list[Entrant], prefer: Collection[str] = ()) -> list[list[Entrant]]:
    """Group candidates so that each round needs at most one index (or none) per column; a build key in
    `prefer` (an index that exists already) goes in the first round, so it is used before it is dropped."""
    by_column: dict[str, list[str]] = {}
    for e in entrants:
        keys = by_column.setdefault(e.build.column_type, [])
        if e.build.key not in keys:
            keys.append(e.build.key)
    for keys in by_column.values():
        keys.sort(key=lambda key: key not in prefer)  # stable: otherwise the entrants' order
    depth = max((len(v) for v in by_column.values()), default=0)
    return [
        [e for e in entrants if by_column[e.build.column_type].index(e.build.key) == r] for r in range(depth)
    ]


def interleave(
    members: list[Entrant], batch: list[StudyQuery], offset: int
) -> Iterable[tuple[Entrant, StudyQuery]]:
    """Query by query, every candidate once, the first one rotating so nobody always goes first."""
    for i, query in enumerate(batch):
        shift = (offset + i) % len(members)
        for entrant in members[shift:] + members[:shift]:
            yield entrant, query


class Confirmation:
    def __init__(
        self,
        conn: psycopg.Connection,
        confirm: Confirm,
        groups: dict[tuple[str, str], list[StudyQuery]],
        store: MeasurementStore,
        run_id: str,
        k: int,
        warmup: int,
        order_log: Path,
        canary: Any,
        probe_workspaces: list[Any],
        concurrency: list[int] | None = None,
    ) -> None:
        self.conn, self.confirm, self.groups, self.store = conn, confirm, groups, store
        self.run_id, self.k, self.warmup, self.order_log = run_id, k, warmup, order_log
        self.canary, self.probe_workspaces = canary, probe_workspaces
        self.concurrency = concurrency or [1]  # only 1 client is measured here; the rest stay null
        self.queries_used: dict[str, int] = {}
        self.builds: list[dict[str, Any]] = []

    def key(self, e: Entrant, scope: str, bucket: str) -> str:
        return cell_key(cell_fields(self.run_id, "confirmation", e.build, e.setting, e.access, scope, bucket))

    def run(self, entrants: list[Entrant], bar: Any = None) -> None:
        existing = index.study_indexes(self.conn)
        built = {e.build.key for e in entrants if index.index_name(e.build) in existing}
        for number, members in enumerate(rounds(entrants, prefer=built), start=1):
            cells = self.cells(members)
            if not any(self.key(e, s, b) not in self.store for s, b, ms in cells for e in ms):
                continue
            self.prepare_indexes(members, bar)
            sample = next(iter(self.groups.values()))[0]
            for e in members:
                self.apply(e)
                arms.check_canary(
                    self.conn,
                    e.access,
                    e.build,
                    arms.query_vector(sample.vector_1536, e.build),
                    self.canary,
                    self.probe_workspaces,
                    self.k,
                )
            for scope, bucket, ms in cells:
                todo = [e for e in ms if self.key(e, scope, bucket) not in self.store]
                if todo:
                    if bar is not None:
                        bar.set_postfix_str(f"confirmation: {scope}/{bucket}, {len(todo)} candidates")
                    self.measure_cell(todo, scope, bucket, number)
                    self.store.save()
                if bar is not None:
                    bar.update(len(todo))
        index.drop_study_indexes(self.conn)

    def prepare_indexes(self, members: list[Entrant], bar: Any = None) -> None:
        """Exactly the round's indexes: screening's build of the same key is reused (same index, already
        settled), anything else is dropped, the missing ones are built."""
        needed = {index.index_name(e.build): e.build for e in members if e.build.index != "exact"}
        have = index.study_indexes(self.conn) & set(needed)
        index.drop_study_indexes(self.conn, keep=have)
        for name, build in needed.items():
            if name in have:
                self.builds.append({"build_key": build.key, "reused": True})
                continue
            if bar is not None:
                bar.set_postfix_str(f"confirmation: building {build.key}")
            built = index.build(self.conn, build, progress=bar is not None and not bar.disable)
            self.builds.append({**_as_dict(built), "reused": False})

    def cells(self, members: list[Entrant]) -> list[tuple[str, str, list[Entrant]]]:
        out = []
        for scope, bucket in sorted(self.groups):
            ms = [e for e in members if scope in SCOPES_BY_ACCESS[e.access]]
            if ms and self.groups[(scope, bucket)]:
                out.append((scope, bucket, ms))
        return out

    def apply(self, e: Entrant) -> dict[str, str]:
        return index.query_settings(self.conn, e.build, e.setting.params, e.setting.iterative_scan)

    def measure_cell(self, members: list[Entrant], scope: str, bucket: str, round_number: int = 1) -> None:
        pool = self.groups[(scope, bucket)][: self.confirm.max_queries]
        for e in members:  # warm-up, discarded
            self.apply(e)
            for q in pool[: self.warmup]:
                ask(self.conn, e.build, e.access, q, self.k)
        answers: dict[Entrant, list[arms.Answer]] = {e: [] for e in members}
        recalls: dict[Entrant, list[float]] = {e: [] for e in members}
        order: list[dict[str, Any]] = []
        used = 0
        with MaintenanceWatch(self.conn) as watch:
            while used < len(pool):
                batch = pool[used : used + self.confirm.batch]
                for e, q in interleave(members, batch, used):
                    self.apply(e)
                    answer = ask(self.conn, e.build, e.access, q, self.k)
                    answers[e].append(answer)
                    recalls[e].append(recall_of(answer, q, e.build, self.k))
                    order.append(
                        {
                            "round": round_number,
                            "cell": f"{scope}/{bucket}",
                            "candidate": e.label,
                            "qid": q.qid,
                        }
                    )
                used += len(batch)
                if all(
                    metrics.decided(
                        metrics.recall_interval(recalls[e]),
                        self.confirm.recall_target,
                        self.confirm.half_width,
                    )
                    for e in members
                ):
                    break
        self.queries_used[f"{scope}/{bucket}"] = max(used, self.queries_used.get(f"{scope}/{bucket}", 0))
        with self.order_log.open("a") as log:
            log.writelines(json.dumps(o, sort_keys=True) + "\n" for o in order)
        queries = pool[:used]
        for e in members:
            self.apply(e)
            result = CellResult(answers[e], recalls[e])
            total_s = sum(a.latency_ns for a in result.answers) / 1e9
            row = measurement(
                cell_fields(self.run_id, "confirmation", e.build, e.setting, e.access, scope, bucket),
                e.build,
                self.k,
                queries,
                result,
                plans.describe(self.conn, e.build, e.access, queries[0], self.k),
                {
                    **{str(c): None for c in self.concurrency},
                    "1": len(queries) / total_s if total_s else None,
                },
                watch.flagged,
            )
            row["interleaved_with"] = len(members)
            self.store.add(row)


def select(results: Results, confirm: Confirm, screening_rows: list[dict[str, Any]]) -> list[Candidate]:
    """The screening stage's candidates, evaluated by the rule, then the leading ones."""
    screened = candidates(results, confirm.recall_target, None, screening_rows)
    return leading(screened, confirm)


def _as_dict(built: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(built)
