"""Screening: every cell of the grid, a few queries each, build by build.

One index build serves every query setting × access arm × scope × size bucket of its sweep, for the shared
design and each design that rides on it (brought up for the build, measured, put away: a copy of its own
stays for the stages after, designs/standing.py; a design that must not see the shared index goes first,
before the index is built). Results are saved after each build, so an interrupted run resumes at the next
cell it has not measured.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg

from dimbench.database import db, seed_policy
from dimbench.database.settle import MaintenanceWatch
from dimbench.evidence import race
from dimbench.evidence.rule import config_of
from dimbench.study import arms, designs, index, plans
from dimbench.study.configs import Arm, Build, Cell, QuerySetting
from dimbench.study.grid import DesignSpec, Grid
from dimbench.study.measure import (
    CellResult,
    Observed,
    StudyQuery,
    concurrent_qps,
    extended,
    per_query,
    run_cell,
    summary,
)
from dimbench.study.results import MeasurementStore, save_raw
from dimbench.study.session import Session
from dimbench.vocabulary import BUCKETS, POLICY_VARIANTS

AUDITED = 1  # real calls per screening cell explained (its first query; confirmation explains two)
CALIBRATION_QUERIES = 15  # per bucket, for a design's measured parameter (routed's T): 60 crossings timed
CANARY = uuid.uuid5(uuid.NAMESPACE_URL, "dimbench/canary-user-without-memberships")
STAGE = "screening"


def study_groups(queries: list[StudyQuery]) -> dict[tuple[str, str], list[StudyQuery]]:
    """Every query of the corpus by (scope, bucket), in corpus order (screening takes the first few)."""
    groups: dict[tuple[str, str], list[StudyQuery]] = {}
    for q in queries:
        groups.setdefault((q.scope, q.bucket), []).append(q)
    return groups


def arms_of(spec: DesignSpec) -> list[str]:
    """A design's arms: a policy variant is swapped in on public.document_chunks, so a design with its own
    copy of the chunks keeps the harmonized policy and those arms would measure nothing new there."""
    own_table = designs.get(spec.name).layout.own_table
    return [a for a in spec.access if not (own_table and a in POLICY_VARIANTS)]


def calibration_sample(groups: dict[tuple[str, str], list[StudyQuery]]) -> list[StudyQuery]:
    """The queries a design's measured parameter is calibrated on: the first few of every bucket, over
    all of a user's workspaces — or of one workspace where the corpus asks only that way (an imported
    corpus whose questions name workspaces): an empty sample would calibrate T to 0 and send every
    call down the index."""
    scopes = {scope for (scope, _), qs in groups.items() if qs}
    scope = "all" if "all" in scopes else "workspace"
    return [q for (s, _), qs in sorted(groups.items()) if s == scope for q in qs[:CALIBRATION_QUERIES]]


def canary_check(conn: psycopg.Connection, arm: Arm, sample: StudyQuery, probe: list[uuid.UUID]) -> None:
    """The canary (no memberships) gets nothing through this arm: RLS is really in force."""
    arms.check_canary(conn, arm, arms.query_vector(sample, arm.build), CANARY, probe)


@dataclass(frozen=True)
class Asked:
    """How one setting's cells are asked: through which arm, whether it is the build's first setting
    (throughput at more clients is measured there), the settings applied, up to how many queries."""

    arm: Arm
    first: bool
    applied: dict[str, Any] = field(hash=False)
    target: int = 0


@dataclass
class Sweep:
    """Everything one screening pass needs; `measure_build` runs one build's whole sweep."""

    conn: psycopg.Connection
    dsn: str
    grid: Grid
    groups: dict[tuple[str, str], list[StudyQuery]]  # (scope, bucket) -> the cell's queries
    store: MeasurementStore
    session: Session
    bar: Any
    probe_workspaces: list[uuid.UUID]
    explain: bool = False  # auto_explain could be loaded: each cell's sampled calls are explained
    raw: dict[str, list] = field(default_factory=dict)  # the build being measured: its per-query answers
    canaried: set[tuple[str, str]] = field(default_factory=set)  # (design, arm) the canary was asked on

    @property
    def run_id(self) -> str:
        return self.session.run_id

    def cells(self, build: Build, settings: list[QuerySetting]) -> Iterator[tuple[DesignSpec, Cell]]:
        for spec in self.grid.designs_on(build):
            for setting in spec.settings(settings):
                for access in arms_of(spec):
                    for scope in self.grid.scopes_for(access):
                        for bucket in BUCKETS:
                            if self.groups.get((scope, bucket)):
                                yield (
                                    spec,
                                    Cell(build, setting, access, scope, bucket, spec.name, spec.params),
                                )

    def asked(self, cell: Cell) -> int:
        """How many queries the cell has been asked (a line without per-query data counts as complete)."""
        row = self.store.rows.get(cell.key(self.run_id, STAGE))
        if row is None:
            return 0
        return len(row["per_query"]["recall"]) if "per_query" in row else self.grid.queries_per_cell

    def dropped(self, cell: Cell) -> bool:
        return config_of(cell.fields(self.run_id, STAGE)).label in self.race["dropped"]

    def wanted(self, cell: Cell, target: int) -> bool:
        """Does the cell still need queries to reach `target` (and is its configuration in the race)?"""
        return self.asked(cell) < target and (self.asked(cell) == 0 or not self.dropped(cell))

    def todo(self, build: Build, settings: list[QuerySetting]) -> int:
        final = self.grid.queries_per_cell
        return sum(self.wanted(cell, final) for _, cell in self.cells(build, settings))

    def planned(self, builds: list[tuple[Build, list[QuerySetting]]]) -> int:
        return sum(1 for b, s in builds for _ in self.cells(b, s))

    @property
    def race(self) -> dict[str, Any]:
        """The race so far (run.json): who was dropped, why, and who was alive after each round."""
        return self.session.info.setdefault("race", {"rounds": self.grid.rounds, "dropped": {}, "alive": []})

    def measure_build(self, build: Build, settings: list[QuerySetting]) -> None:
        index.drop_study_indexes(self.conn, column_type=build.column_type)
        raw: dict[str, list] = {"cell": [], "qid": [], "latency_ns": [], "ids": []}
        self.raw = raw  # this build's per-query answers, saved to raw/ when the build is done
        final = self.grid.queries_per_cell
        todo = [spec for spec, cell in self.cells(build, settings) if self.wanted(cell, final)]
        # A design that must not see the shared index (partial: its own indexes cover the expression) goes
        # first, before the index is built: the build then stands after the sweep, for confirmation to
        # reuse, instead of being dropped by that design and built again.
        before, after = [], []
        for spec in self.grid.designs_on(build):
            if spec in todo:
                (before if designs.get(spec.name).layout.excludes_shared_index else after).append(spec)
        try:
            for spec in before:
                self.measure_design(build, settings, spec)
            if after:
                self.bar.set_postfix_str(f"building {build.key}")
                self.session.record_build(index.build(self.conn, build, progress=self.session.progress))
            for spec in after:
                self.measure_design(build, settings, spec)
        finally:
            self.store.save()
            if raw["cell"]:
                save_raw(
                    self.session.out / "raw",
                    build.key.replace("/", "_"),
                    {k: np.asarray(v) for k, v in raw.items()},
                )
            self.session.info["measured_cells"] = sum(
                r.get("stage") == STAGE for r in self.store.rows.values()
            )
            self.session.save()

    def measure_design(self, build: Build, settings: list[QuerySetting], spec: DesignSpec) -> None:
        """The design's cells, installed once for the build: round by round (racing between rounds), each
        query setting at its own measured value where the design measures one (routed's T)."""
        design = designs.get(spec.name)
        self.bar.set_postfix_str(f"installing {spec.name} for {build.key}")
        mine = spec.settings(settings)
        installed, _ = designs.bring_up(self.conn, design, build, dict(spec.params))
        self.canaried = set()  # a fresh install: every arm proves RLS on it again
        try:
            detail = dict(installed.detail)
            if design.layout.installs:
                self.session.record_design(build.key, installed, detail)
                self.session.save()
            if design.measures(spec.params):
                detail.setdefault("thresholds", {})
                detail.setdefault("calibrations", {})
            for number, target in enumerate(self.grid.round_targets(), start=1):
                for setting in mine:
                    measured = self.measured_value(build, setting, design, installed, detail)
                    self.measure_setting(build, setting, settings, spec, measured, target)
                if number < self.grid.rounds:
                    self.judge(number)
        finally:
            designs.put_away(self.conn, design)

    def measured_value(
        self, build: Build, setting: QuerySetting, design: Any, installed: Any, detail: dict[str, Any]
    ) -> dict[str, Any]:
        """A measured parameter (routed's T) at this setting: calibrated the first time the setting is
        reached, applied again from the record in later rounds. {} for a design that measures none."""
        if not design.measures(installed.params):
            return {}
        index.query_settings(self.conn, build, setting.params, setting.iterative_scan)
        if setting.key not in detail["thresholds"]:
            calibration = {
                **design.calibrate(self.conn, build, calibration_sample(self.groups), self.grid.k),
                "setting": setting.key,
            }
            detail["thresholds"][setting.key] = calibration[design.MEASURED]
            detail["calibrations"][setting.key] = calibration
            self.session.record_design(build.key, installed, detail)
            self.session.save()
        value = detail["thresholds"][setting.key]
        design.set_measured(self.conn, value)
        return {design.setting_name: value}

    def judge(self, number: int) -> None:
        """Between rounds: drop what the intervals exclude (evidence/race.py), and record who is alive."""
        rows = [r for r in self.store.rows.values() if r["run_id"] == self.run_id and r["stage"] == STAGE]
        target = self.grid.confirm.recall_target if self.grid.confirm else 0.95
        out = set(self.race["dropped"])
        for drop in race.judge(
            rows,
            target,
            number,
            quality_tolerance=self.grid.quality_tolerance,
            out_of_race=out,
            latency_margin=self.grid.latency_margin,
        ):
            self.race["dropped"].setdefault(drop.label, drop.as_dict())
        alive: dict[str, set[str]] = {}  # design/arm -> the configurations still in the race
        for row in rows:
            label = config_of(row).label
            if label not in self.race["dropped"]:
                alive.setdefault(f"{row.get('design')}/{row['access']}", set()).add(label)
        spent = sum(r["n_queries"] for r in rows)
        counts = {group: len(labels) for group, labels in sorted(alive.items())}
        self.race["alive"].append({"round": number, "queries": spent, "alive": counts})
        self.session.save()

    def measure_setting(
        self,
        build: Build,
        setting: QuerySetting,
        all_settings: list[QuerySetting],
        spec: DesignSpec,
        measured: dict[str, Any],
        target: int,
    ) -> None:
        """One setting's cells under every arm, up to `target` queries each; `measured` (routed's T) is
        recorded with the settings."""
        applied = {
            **index.query_settings(self.conn, build, setting.params, setting.iterative_scan),
            **measured,
        }
        first = setting is all_settings[0]
        for access in arms_of(spec):
            cells = [
                Cell(build, setting, access, scope, bucket, spec.name, spec.params)
                for scope in self.grid.scopes_for(access)
                for bucket in BUCKETS
                if self.groups.get((scope, bucket))
            ]
            cells = [c for c in cells if self.wanted(c, target)]
            if not cells:
                continue
            variant = (
                seed_policy.seed_policy(self.conn, access)
                if access in POLICY_VARIANTS
                else contextlib.nullcontext()
            )
            with variant:
                arm = Arm(access, build, self.grid.k, spec.name)
                if (spec.name, access) not in self.canaried:
                    # Once per arm and install: a policy variant is the same statement each time it is
                    # swapped in, and a canary through an iterative scan walks up to max_scan_tuples
                    # (70 s of small's run when it was asked per setting and round).
                    canary_check(self.conn, arm, next(iter(self.groups.values()))[0], self.probe_workspaces)
                    self.canaried.add((spec.name, access))
                for cell in cells:
                    self.measure_cell(cell, Asked(arm, first, applied, target))

    def measure_cell(self, cell: Cell, asked: Asked) -> None:
        """The cell's next batch of queries (up to asked.target), appended to what it was asked before."""
        arm = asked.arm
        key = cell.key(self.run_id, STAGE)
        earlier = self.store.rows.get(key)
        done = self.asked(cell)
        queries = self.groups[(cell.scope, cell.bucket)][done : asked.target]
        self.bar.set_postfix_str(
            f"{cell.design} {cell.build.key} {cell.setting.key} {cell.access} {cell.scope}/{cell.bucket}"
        )
        # warm-up before a cell's first batch only: a later round finds its pages where the first left them
        warmup = self.grid.warmup if done == 0 else 0
        with MaintenanceWatch(self.conn) as watch:
            result = run_cell(self.conn, arm, queries, warmup)
        answered = per_query(arm, queries, result)
        if earlier is None:
            audits = audit_calls(self.conn, arm, queries) if self.explain else []
            qps = self.throughput(cell, arm, asked.first, queries, result)
            observed = Observed(qps, plans.summarize(audits), watch.flagged)
            row = summary(cell.fields(self.run_id, STAGE), arm, answered, observed)
            row["plan_audit"] = audits if self.explain else None
        else:
            answered = extended(earlier["per_query"], answered)
            total_s = sum(answered["latency_ms"]) / 1e3
            qps = {**earlier["qps"], "1": len(answered["latency_ms"]) / total_s if total_s else None}
            observed = Observed(qps, earlier.get("plan"), bool(earlier.get("maintenance") or watch.flagged))
            row = summary(cell.fields(self.run_id, STAGE), arm, answered, observed)
            row["plan_audit"] = earlier.get("plan_audit")
        row["settings"] = asked.applied
        self.store.add(row)
        for q, a in zip(queries, result.answers, strict=True):
            self.raw["cell"].append(key)
            self.raw["qid"].append(q.qid)
            self.raw["latency_ns"].append(a.latency_ns)
            self.raw["ids"].append(",".join(str(i) for i in a.ids))
        self.bar.update(1)

    def throughput(
        self, cell: Cell, arm: Arm, first: bool, queries: list[StudyQuery], result: CellResult
    ) -> dict[str, float | None]:
        """QPS at 1 client from the sequential run; at more clients only for the first setting of each
        build and the service and rls arms over all of a user's workspaces (enough for the curve)."""
        total_ns = sum(a.latency_ns for a in result.answers)
        qps: dict[str, float | None] = {str(c): None for c in self.grid.concurrency}
        qps["1"] = len(result.answers) / (total_ns / 1e9) if total_ns else None
        if not first or cell.access not in ("service", "rls") or cell.scope != "all":
            return qps

        def connect() -> psycopg.Connection:
            return db.use_vectors(db.connect(self.dsn))

        def setup(c: psycopg.Connection) -> None:
            index.query_settings(c, cell.build, cell.setting.params, cell.setting.iterative_scan)

        for clients in self.grid.concurrency:
            if clients > 1:
                qps[str(clients)] = concurrent_qps(
                    connect, arm, queries, clients, self.grid.concurrency_queries, setup
                )
        return qps


def audit_calls(conn: psycopg.Connection, arm: Arm, queries: list[StudyQuery]) -> list[dict[str, Any]]:
    """The cell's first query (and its last, with AUDITED 2) once more, explained (plans.audit)."""
    picked = [queries[0], queries[-1]] if len(queries) > 1 else list(queries)
    return [plans.audit(conn, arm, q) for q in picked[:AUDITED]]


def measure_grid(
    conn: psycopg.Connection,
    dsn: str,
    grid: Grid,
    queries: list[StudyQuery],
    store: MeasurementStore,
    session: Session,
) -> Sweep:
    """Screening: every cell of the grid, `queries_per_cell` queries each."""
    from tqdm import tqdm

    pools = study_groups(queries)
    groups = {key: qs[: grid.queries_per_cell] for key, qs in pools.items()}
    builds = list(grid.builds())
    probe = sorted({ws for q in queries for ws in q.visible})[:1]
    with tqdm(desc="screening", unit="cell", disable=not session.progress) as bar:
        sweep = Sweep(conn, dsn, grid, groups, store, session, bar, probe, plans.available(conn))
        session.info["plan_audit"] = "auto_explain" if sweep.explain else None
        session.info["planned_cells"] = sweep.planned(builds)
        bar.total = sum(sweep.todo(b, s) for b, s in builds)
        if bar.total:
            index.drop_study_indexes(conn)  # nothing of an earlier run's builds is measured again
        for build, settings in builds:
            if sweep.todo(build, settings):
                sweep.measure_build(build, settings)
    # Each column type's last build stays for confirmation to reuse; run() drops them at the end.
    session.info["measured_cells"] = sum(r.get("stage") == STAGE for r in store.rows.values())
    sweep.groups = pools
    return sweep
