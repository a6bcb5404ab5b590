"""The confirmation stage: the leading candidates of screening, measured again until each cell is decided.

Screening measures the whole grid with a few queries per cell; its intervals are wide, so the ranking
near the top is noise. Confirmation takes the configurations that could still meet the rule, and for each
(scope, bucket) cell asks all of them the same queries, **interleaved** — query by query, round-robin over
the candidates (rotating who goes first), same connection — so drift of the machine hits all alike. It
adds batches of queries until every candidate's recall interval in the cell is decided against the
target (wholly above or below it, or narrower than ±half_width) or the corpus's query pool is used up.

Candidates whose indexes can coexist (one build per column, one column per design) are measured in the
same round; an exact-search candidate needs its column without a vector index, so it goes to a round of
its own for that column. A design is installed for its round and removed after it; routed keeps the
threshold screening measured.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from dimbench.database import seed_policy
from dimbench.database.settle import MaintenanceWatch
from dimbench.report.decide import CHOOSABLE, Candidate, Config, candidates
from dimbench.report.load import Results
from dimbench.study import arms, designs, index, metrics, plans
from dimbench.study.cells import cell_fields, cell_key
from dimbench.study.designs import routed
from dimbench.study.grid import SCOPES_BY_ACCESS, Build, Confirm, QuerySetting
from dimbench.study.measure import CellResult, StudyQuery, ask, measurement, recall_of
from dimbench.study.results import MeasurementStore
from dimbench.vocabulary import DEFAULT_DESIGN, POLICY_VARIANTS

ARMS = ("rls", "rls_filter", "service")  # choosable designs and the service baseline (rls_seed: never chosen)
AT_LEAST = 5  # the best five choosable configurations are always confirmed


@dataclass(frozen=True)
class Entrant:
    """One candidate configuration, ready to be asked."""

    build: Build
    setting: QuerySetting
    access: str
    label: str
    design: str = DEFAULT_DESIGN
    design_params: str = "{}"  # canonical JSON, as in the cell's identity

    @classmethod
    def of(cls, config: Config) -> Entrant:
        return cls(
            Build(config.column_type, config.index, json.loads(config.build_params)),
            QuerySetting(json.loads(config.query_params), config.iterative_scan),
            config.access,
            config.label,
            config.design,
            config.design_params,
        )

    @property
    def group(self) -> tuple[str, str]:
        """What must be installed for it: (design, build key)."""
        return self.design, self.build.key


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
    per_design = [(lambda c: c.config.design, choosable)] if confirm.every_design else []
    for key, pool in (
        (lambda c: c.config.column_type, choosable),
        *per_design,  # every design meets the others in confirmation
        (lambda c: c.config.access, eligible),
    ):
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
    """Group candidates so that each round needs at most one (design, build) per column and one column
    per installed design (a design has one schema; shared installs nothing, so it may span columns).

    prefer: build keys whose index stands already. The groups searching one of them are placed first,
    and no other group on that column goes in a round before theirs: the index is used before a round
    drops it, never built again for them."""
    groups: list[tuple[str, str]] = []
    column: dict[tuple[str, str], str] = {}
    for e in entrants:
        if e.group not in groups:
            groups.append(e.group)
            column[e.group] = e.build.column_type
    standing = [g for g in groups if g[1] in prefer and _uses_shared_index(g[0])]
    placed: list[list[tuple[str, str]]] = []
    last_use: dict[str, int] = {}  # column -> the last round that searches its standing index
    for g in [*standing, *(g for g in groups if g not in standing)]:
        # Any other group on that column drops the standing index (another build, or a design with
        # its own indexes even on the same key), so it waits until the index's last use.
        start = last_use[column[g]] + 1 if column[g] in last_use and g not in standing else 0
        for number in range(start, len(placed) + 1):
            if number == len(placed):
                placed.append([])
            members = placed[number]
            if all(column[m] != column[g] and (m[0] != g[0] or g[0] == DEFAULT_DESIGN) for m in members):
                members.append(g)
                break
        if g in standing:
            last_use[column[g]] = max(number, last_use.get(column[g], 0))
    return [[e for e in entrants if e.group in members] for members in placed]


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
        self.standing: list[str] = []  # the study indexes that stood when run() began
        self.designs: list[dict[str, Any]] = []  # designs installed for a round (removed after it)
        self.explain = plans.available(conn)
        self.screened_designs: dict[tuple[str, str], dict[str, Any]] = {}  # (design, build key) -> run.json
        self.threshold_set: int | None = None  # routed's T as last written to its settings table

    def fields(self, e: Entrant, scope: str, bucket: str) -> dict[str, Any]:
        return cell_fields(
            self.run_id,
            "confirmation",
            e.build,
            e.setting,
            e.access,
            scope,
            bucket,
            e.design,
            json.loads(e.design_params),
        )

    def key(self, e: Entrant, scope: str, bucket: str) -> str:
        return cell_key(self.fields(e, scope, bucket))

    def run(self, entrants: list[Entrant], bar: Any = None) -> None:
        existing = index.study_indexes(self.conn)
        self.standing = sorted(existing)
        built = {e.build.key for e in entrants if index.index_name(e.build) in existing}
        for number, members in enumerate(rounds(entrants, prefer=built), start=1):
            cells = self.cells(members)
            if not any(self.key(e, s, b) not in self.store for s, b, ms in cells for e in ms):
                continue
            self.prepare_indexes(members, bar)
            self.install_designs(members, bar)
            try:
                self.measure_round(members, cells, number, bar)
            finally:
                for name in {e.design for e in members} - {DEFAULT_DESIGN}:
                    designs.module(name).remove(self.conn)
        index.drop_study_indexes(self.conn)

    def measure_round(self, members: list[Entrant], cells: list, number: int, bar: Any) -> None:
        """Each cell of the round; an arm with a policy variant gets its own pass with the variant in."""
        for variant in [None, *sorted({e.access for e in members if e.access in POLICY_VARIANTS})]:
            wanted = [e for e in members if (e.access in POLICY_VARIANTS) == (variant is not None)]
            wanted = [e for e in wanted if variant is None or e.access == variant]
            if not wanted:
                continue
            swap = seed_policy.seed_policy(self.conn, variant) if variant else contextlib.nullcontext()
            with swap:
                sample = next(iter(self.groups.values()))[0]
                for e in wanted:
                    self.apply(e)
                    arms.check_canary(
                        self.conn,
                        e.access,
                        e.build,
                        arms.query_vector(sample.vector_1536, e.build),
                        self.canary,
                        self.probe_workspaces,
                        self.k,
                        design=e.design,
                    )
                for scope, bucket, ms in cells:
                    todo = [e for e in ms if e in wanted and self.key(e, scope, bucket) not in self.store]
                    if todo:
                        if bar is not None:
                            bar.set_postfix_str(f"confirmation: {scope}/{bucket}, {len(todo)} candidates")
                        self.measure_cell(todo, scope, bucket, number)
                        self.store.save()
                    if bar is not None:
                        bar.update(len(todo))

    def install_designs(self, members: list[Entrant], bar: Any = None) -> None:
        """The round's designs, with the parameters screening measured them at (routed: its threshold)."""
        for design, build_key in sorted({e.group for e in members if e.design != DEFAULT_DESIGN}):
            e = next(m for m in members if m.group == (design, build_key))
            params = json.loads(e.design_params)
            measured = self.measured_threshold(e)
            if measured is not None:
                params = {**params, "threshold": measured}  # apply() sets each entrant's own T
                self.threshold_set = measured
            if bar is not None:
                bar.set_postfix_str(f"confirmation: installing {design} for {build_key}")
            module = designs.module(design)
            if getattr(module, "EXCLUDES_SHARED_INDEX", False):
                index.drop_study_indexes(self.conn, column_type=e.build.column_type)
            installed = module.install(self.conn, e.build, params)
            self.designs.append({"design": design, "build_key": build_key, "seconds": installed.seconds})

    def prepare_indexes(self, members: list[Entrant], bar: Any = None) -> None:
        """Exactly the round's indexes on the columns it searches: an index of the same key that stands
        already (screening's or an earlier round's, settled) is reused, any other on those columns is
        dropped, the missing ones are built. Other columns' indexes stay for later rounds (they cannot
        serve this round's queries)."""
        needed = {
            index.index_name(e.build): e.build
            for e in members
            if e.build.index != "exact" and _uses_shared_index(e.design)
        }
        have = index.study_indexes(self.conn) & set(needed)
        for column_type in sorted({e.build.column_type for e in members}):
            index.drop_study_indexes(self.conn, column_type=column_type, keep=have)
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

    def apply(self, e: Entrant) -> dict[str, Any]:
        applied: dict[str, Any] = index.query_settings(
            self.conn, e.build, e.setting.params, e.setting.iterative_scan
        )
        threshold = self.measured_threshold(e)
        if threshold is not None and threshold != self.threshold_set:
            routed.set_threshold(self.conn, threshold)
            self.threshold_set = threshold
        return {**applied, "routed.threshold": threshold} if threshold is not None else applied

    def measured_threshold(self, e: Entrant) -> int | None:
        """Routed's T as screening measured it at this entrant's query setting (None: not routed, or T
        fixed by the grid and installed with the design)."""
        if e.design != routed.NAME or json.loads(e.design_params).get("threshold") != "measured":
            return None
        detail = self.screened_designs.get((e.design, e.build.key), {}).get("detail") or {}
        return routed.threshold_for(detail, e.setting.key)

    def measure_cell(self, members: list[Entrant], scope: str, bucket: str, round_number: int = 1) -> None:
        pool = self.groups[(scope, bucket)][: self.confirm.max_queries]
        for e in members:  # warm-up, discarded
            self.apply(e)
            for q in pool[: self.warmup]:
                ask(self.conn, e.build, e.access, q, self.k, design=e.design)
        answers: dict[Entrant, list[arms.Answer]] = {e: [] for e in members}
        recalls: dict[Entrant, list[float]] = {e: [] for e in members}
        order: list[dict[str, Any]] = []
        used = 0
        with MaintenanceWatch(self.conn) as watch:
            while used < len(pool):
                batch = pool[used : used + self.confirm.batch]
                for e, q in interleave(members, batch, used):
                    self.apply(e)
                    answer = ask(self.conn, e.build, e.access, q, self.k, design=e.design)
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
            applied = self.apply(e)
            result = CellResult(answers[e], recalls[e])
            total_s = sum(a.latency_ns for a in result.answers) / 1e9
            audits = (
                [
                    plans.audit(self.conn, e.build, e.access, q, self.k, e.design)
                    for q in (queries[0], queries[-1])
                ]
                if self.explain
                else []
            )
            row = measurement(
                self.fields(e, scope, bucket),
                e.build,
                self.k,
                queries,
                result,
                plans.summarize(audits),
                {
                    **{str(c): None for c in self.concurrency},
                    "1": len(queries) / total_s if total_s else None,
                },
                watch.flagged,
            )
            row["interleaved_with"] = len(members)
            row["settings"] = applied
            row["plan_audit"] = audits if self.explain else None
            self.store.add(row)


def _uses_shared_index(design: str) -> bool:
    """shared and routed search the study's own index; the other designs build their own."""
    return design == DEFAULT_DESIGN or getattr(designs.module(design), "NEEDS_SHARED_INDEX", False)


def select(results: Results, confirm: Confirm, screening_rows: list[dict[str, Any]]) -> list[Candidate]:
    """The screening stage's candidates, evaluated by the rule, then the leading ones."""
    screened = candidates(results, confirm.recall_target, None, screening_rows)
    return leading(screened, confirm)


def _as_dict(built: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(built)
