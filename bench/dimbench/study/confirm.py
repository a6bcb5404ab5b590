"""The confirmation stage: the leading candidates of screening, measured again until each cell is decided.

Screening measures the whole grid with a few queries per cell; its intervals are wide, so the ranking
near the top is noise. Confirmation takes the configurations that could still meet the rule, and for each
(scope, bucket) cell asks all of them the same queries, **interleaved** — query by query, round-robin over
the candidates (rotating who goes first), same connection — so drift of the machine hits all alike. It
adds batches of queries until every candidate's recall interval in the cell is decided against the
target (wholly above or below it, or narrower than ±half_width) and its nDCG@10 shortfall against the
rule's tolerance (wholly within or wholly beyond it), or the corpus's query pool is used up.

Candidates whose indexes can coexist (one build per column, one column per design) are measured in the
same round; an exact-search candidate needs its column without a vector index, so it goes to a round of
its own for that column. A design is installed for its round and put away after it (a design on its own
copy, inline or partitioned, stays standing and is reused: designs/standing.py); routed keeps the
threshold screening measured.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from dimbench import stats
from dimbench.database import seed_policy
from dimbench.database.settle import MaintenanceWatch
from dimbench.evidence.results import Results
from dimbench.evidence.rule import CHOOSABLE, Candidate, Config, candidates, config_of
from dimbench.study import designs, index, plans
from dimbench.study.configs import Arm, Build, Cell, QuerySetting
from dimbench.study.grid import SCOPES_BY_ACCESS, Confirm, Grid
from dimbench.study.measure import (
    CellResult,
    Observed,
    StudyQuery,
    ask,
    measurement,
    quality_decided,
    recall_of,
)
from dimbench.study.results import MeasurementStore
from dimbench.study.screening import Sweep, canary_check
from dimbench.study.session import Session
from dimbench.vocabulary import DEFAULT_DESIGN, POLICY_VARIANTS

ARMS = ("rls", "rls_filter", "service")  # choosable designs and the service baseline (rls_seed: never chosen)
AT_LEAST = 5  # the best five choosable configurations are always confirmed
STAGE = "confirmation"


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

    def arm(self, k: int) -> Arm:
        return Arm(self.access, self.build, k, self.design)

    def cell(self, scope: str, bucket: str) -> Cell:
        params = json.loads(self.design_params)
        return Cell(self.build, self.setting, self.access, scope, bucket, self.design, params)


def leading(screened: list[Candidate], confirm: Confirm) -> list[Candidate]:
    """Who goes to confirmation: the configurations that could still meet the rule (no cell's recall
    interval wholly below the target).

    The rule chooses among the RLS designs (CHOOSABLE), so the places go to them: the best five, the best
    per column type, and every other one whose worst p95 is within `reach` of the best's, plus the best
    of each arm (for the service baseline: shared's best) and any whose cell saw maintenance. "Best"
    ranks those whose screening mean already meets the target first (then by p95): a fast configuration
    that fails at the mean will most likely fail confirmation too. `max_candidates` caps only the within-reach
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
        # the best of each arm; outside the choosable arms (the service baseline) the best of `shared`,
        # the baseline RLS is measured against (not a design's install: inline's costs 33 s at 100k)
        (
            lambda c: c.config.access,
            [c for c in eligible if c.config.access in CHOOSABLE or c.config.design == DEFAULT_DESIGN],
        ),
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
    standing = [g for g in groups if g[1] in prefer and designs.get(g[0]).layout.searches_shared_index]
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
            # a design has one schema, so one column a round; shared installs nothing, so it may span
            if all(
                column[m] != column[g] and (m[0] != g[0] or not designs.get(g[0]).layout.installs)
                for m in members
            ):
                members.append(g)
                break
        if g in standing:
            last_use[column[g]] = max(number, last_use.get(column[g], 0))
    return [[e for e in entrants if e.group in members] for members in placed]


def ask_until_settled(
    members: list[Entrant],
    pool: list[StudyQuery],
    batch: int,
    ask_one: Callable[[Entrant, StudyQuery], None],
    settled: Callable[[Entrant, int], bool],
) -> int:
    """A cell's queries in batches, interleaved over the candidates still asking: after each batch a
    candidate whose cell is settled (`settled(e, queries it has answered)`) stops, the rest go on, until
    none is left or the pool is used up. Each candidate answers a prefix of the pool; returns the longest."""
    active = list(members)
    used = 0
    while active and used < len(pool):
        chunk = pool[used : used + batch]
        for e, q in interleave(active, chunk, used):
            ask_one(e, q)
        used += len(chunk)
        active = [e for e in active if not settled(e, used)]
    return used


def interleave(
    members: list[Entrant], batch: list[StudyQuery], offset: int
) -> Iterable[tuple[Entrant, StudyQuery]]:
    """Query by query, every candidate once, the first one rotating so nobody always goes first."""
    for i, query in enumerate(batch):
        shift = (offset + i) % len(members)
        for entrant in members[shift:] + members[:shift]:
            yield entrant, query


class Confirmation:
    """The confirmation stage of one run: its candidates measured interleaved, round by round."""

    def __init__(
        self,
        conn: psycopg.Connection,
        grid: Grid,
        groups: dict[tuple[str, str], list[StudyQuery]],
        store: MeasurementStore,
        session: Session,
        probe_workspaces: list[Any],
    ) -> None:
        assert grid.confirm is not None
        self.conn, self.grid, self.confirm, self.groups, self.store = conn, grid, grid.confirm, groups, store
        self.session, self.probe_workspaces = session, probe_workspaces
        self.run_id, self.k, self.warmup = session.run_id, grid.k, grid.warmup
        self.order_log = session.out / "raw" / "confirmation-order.jsonl"
        self.queries_used: dict[str, int] = {}
        self.builds: list[dict[str, Any]] = []
        self.standing: list[str] = []  # the study indexes that stood when run() began
        self.designs: list[dict[str, Any]] = []  # designs installed for a round (removed after it)
        self.explain = plans.available(conn)
        self.measured_set: dict[str, Any] = {}  # design -> its measured value as last applied

    def key(self, e: Entrant, scope: str, bucket: str) -> str:
        return e.cell(scope, bucket).key(self.run_id, STAGE)

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
                for name in {e.design for e in members}:
                    designs.put_away(self.conn, designs.get(name))
        # The indexes of the last rounds stay: the side channel and the deployment stage search the same
        # builds (the chosen one's concurrent build is the deployment's measurement); run() drops them.

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
                    canary_check(self.conn, e.arm(self.k), sample, self.probe_workspaces)
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
        for name, build_key in sorted({e.group for e in members}):
            e = next(m for m in members if m.group == (name, build_key))
            design = designs.get(name)
            params = json.loads(e.design_params)
            measured = self.measured_value(e)
            if measured is not None:
                params = {**params, design.MEASURED: measured}  # apply() sets each entrant's own value
                self.measured_set[name] = measured
            if bar is not None and design.layout.installs:
                bar.set_postfix_str(f"confirmation: installing {name} for {build_key}")
            installed, _ = designs.bring_up(self.conn, design, e.build, params)
            if design.layout.installs:
                self.designs.append(
                    {  # reused: a copy standing from screening's install (designs/standing.py) cost nothing
                        "design": name,
                        "build_key": build_key,
                        "seconds": 0.0 if installed.reused else installed.seconds,
                        "reused": installed.reused,
                    }
                )

    def prepare_indexes(self, members: list[Entrant], bar: Any = None) -> None:
        """Exactly the round's indexes on the columns it searches: an index of the same key that stands
        already (screening's or an earlier round's, settled) is reused, any other on those columns is
        dropped, the missing ones are built. Other columns' indexes stay for later rounds (they cannot
        serve this round's queries)."""
        needed = {
            index.index_name(e.build): e.build
            for e in members
            if e.build.index != "exact" and designs.get(e.design).layout.searches_shared_index
        }
        have = index.study_indexes(self.conn) & set(needed)
        # A design on its own copy of the chunks (inline, partitioned) cannot be served by an index on
        # public's: its column's index stays for the rounds and stages after (the deployment's CIC reuses it).
        searched = {e.build.column_type for e in members if not designs.get(e.design).layout.own_table}
        for column_type in sorted(searched):
            index.drop_study_indexes(self.conn, column_type=column_type, keep=have)
        for name, build in needed.items():
            if name in have:
                self.builds.append({"build_key": build.key, "reused": True})
                continue
            if bar is not None:
                bar.set_postfix_str(f"confirmation: building {build.key}")
            built = index.build(self.conn, build, progress=bar is not None and not bar.disable)
            self.builds.append({**asdict(built), "reused": False})

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
        measured = self.measured_value(e)
        if measured is None:
            return applied
        design = designs.get(e.design)
        if measured != self.measured_set.get(e.design):
            design.set_measured(self.conn, measured)
            self.measured_set[e.design] = measured
        return {**applied, design.setting_name: measured}

    def measured_value(self, e: Entrant) -> Any:
        """A design's measured parameter as screening measured it at this entrant's query setting (None:
        the design measures nothing, or the grid fixed the value and it was installed with the design)."""
        design = designs.get(e.design)
        if not design.measures(json.loads(e.design_params)):
            return None
        return design.measured_at(self.session.design_detail(e.design, e.build.key), e.setting.key)

    def settled(self, answers: list[Any], recalls: list[float], queries: list[StudyQuery]) -> bool:
        """Enough queries for one candidate in a cell: recall wholly below the target (nothing else can
        save it), or recall decided and quality decided against the rule's tolerance."""
        recall = stats.recall_interval(recalls)
        target = self.confirm.recall_target
        if recall is not None and recall[1] < target:
            return True
        return stats.decided(recall, target, self.confirm.half_width) and quality_decided(
            answers, queries, self.grid.quality_tolerance
        )

    def measure_cell(self, members: list[Entrant], scope: str, bucket: str, round_number: int = 1) -> None:
        pool = self.groups[(scope, bucket)][: self.confirm.max_queries]
        for e in members:  # warm-up, discarded
            self.apply(e)
            for q in pool[: self.warmup]:
                ask(self.conn, e.arm(self.k), q)
        answers: dict[Entrant, list[Any]] = {e: [] for e in members}
        recalls: dict[Entrant, list[float]] = {e: [] for e in members}
        order: list[dict[str, Any]] = []

        def ask_one(e: Entrant, q: StudyQuery) -> None:
            self.apply(e)
            answer = ask(self.conn, e.arm(self.k), q)
            answers[e].append(answer)
            recalls[e].append(recall_of(answer, q, e.arm(self.k)))
            order.append(
                {"round": round_number, "cell": f"{scope}/{bucket}", "candidate": e.label, "qid": q.qid}
            )

        # Decided: a candidate's recall against the target, and its quality against the rule's tolerance
        # (stopping on recall alone left shortfalls of -1.0 % at [-2.2 %, -0.1 %] after 100 queries: failed
        # by the rule's lower bound on evidence the pool could still narrow).
        with MaintenanceWatch(self.conn) as watch:
            used = ask_until_settled(
                members,
                pool,
                self.confirm.batch,
                ask_one,
                lambda e, n: self.settled(answers[e], recalls[e], pool[:n]),
            )
        self.queries_used[f"{scope}/{bucket}"] = max(used, self.queries_used.get(f"{scope}/{bucket}", 0))
        with self.order_log.open("a") as log:
            log.writelines(json.dumps(o, sort_keys=True) + "\n" for o in order)
        for e in members:
            queries = pool[: len(answers[e])]
            applied = self.apply(e)
            arm = e.arm(self.k)
            result = CellResult(answers[e], recalls[e])
            total_s = sum(a.latency_ns for a in result.answers) / 1e9
            audits = (
                [plans.audit(self.conn, arm, q) for q in (queries[0], queries[-1])] if self.explain else []
            )
            qps = {
                **{str(c): None for c in self.grid.concurrency},
                "1": len(queries) / total_s if total_s else None,
            }
            observed = Observed(qps, plans.summarize(audits), watch.flagged)
            row = measurement(
                e.cell(scope, bucket).fields(self.run_id, STAGE), arm, queries, result, observed
            )
            row["interleaved_with"] = len(members)
            row["settings"] = applied
            row["plan_audit"] = audits if self.explain else None
            self.store.add(row)


def select(
    results: Results, confirm: Confirm, screening_rows: list[dict[str, Any]], quality_tolerance: float
) -> list[Candidate]:
    """The screening stage's candidates, evaluated by the rule (at the grid's quality tolerance), then the
    leading ones."""
    screened = candidates(
        results, confirm.recall_target, None, screening_rows, quality_tolerance=quality_tolerance
    )
    return leading(screened, confirm)


def confirm_leaders(
    conn: psycopg.Connection, grid: Grid, sweep: Sweep, store: MeasurementStore, session: Session
) -> None:
    """Confirmation: the leading candidates of screening, interleaved, until every cell is decided."""
    from tqdm import tqdm

    assert grid.confirm is not None
    info = session.info
    screening = [r for r in store.rows.values() if r["run_id"] == sweep.run_id and r["stage"] == "screening"]
    results = Results(session.out, info, screening, [info])
    # A configuration the race dropped (its interval excluded it) does not come back.
    dropped = set((info.get("race") or {}).get("dropped", {}))
    leaders = select(
        results,
        grid.confirm,
        [r for r in screening if config_of(r).label not in dropped],
        grid.quality_tolerance,
    )
    entrants = [Entrant.of(c.config) for c in leaders]
    pools = {key: qs[: grid.confirm.max_queries] for key, qs in sweep.groups.items()}
    stage = Confirmation(conn, grid, pools, store, session, sweep.probe_workspaces)
    (session.out / "raw").mkdir(parents=True, exist_ok=True)
    info["confirmation"] = {
        "status": "running",
        "candidates": [e.label for e in entrants],
        "max_queries_per_cell": grid.confirm.max_queries,
        "pool_per_cell": {f"{s}/{b}": len(qs) for (s, b), qs in sorted(pools.items())},
    }
    session.save()
    total = sum(len(ms) for members in rounds(entrants) for _, _, ms in stage.cells(members))
    try:
        with tqdm(desc="confirmation", unit="cell", total=total, disable=not session.progress) as bar:
            stage.run(entrants, bar)
        info["confirmation"]["status"] = "done"
    finally:
        info["confirmation"]["queries_per_cell"] = dict(sorted(stage.queries_used.items()))
        info["confirmation"]["standing"] = stage.standing
        info["confirmation"]["builds"] = stage.builds
        info["confirmation"]["designs"] = stage.designs
        session.save()
