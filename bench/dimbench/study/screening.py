"""Screening: every cell of the grid, a few queries each, build by build.

One index build serves every query setting × access arm × scope × size bucket of its sweep, first for the
shared design, then for each design that rides on it (brought up for the build, measured, removed; a
design that must not see the shared index goes last, as it drops it). Results are saved after each
build, so an interrupted run resumes at the next cell it has not measured.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from dimbench.database import db, seed_policy
from dimbench.database.settle import MaintenanceWatch
from dimbench.study import arms, designs, index, plans
from dimbench.study.configs import Arm, Build, Cell, QuerySetting
from dimbench.study.grid import DesignSpec, Grid
from dimbench.study.measure import CellResult, Observed, StudyQuery, concurrent_qps, measurement, run_cell
from dimbench.study.results import MeasurementStore, save_raw
from dimbench.study.session import Session
from dimbench.vocabulary import BUCKETS, POLICY_VARIANTS

AUDITED = 2  # real calls per cell explained (the first and the last query)
CALIBRATION_QUERIES = 20  # per bucket, for a design's measured parameter (routed's T)
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
    all of a user's workspaces."""
    return [
        q for (scope, _), qs in sorted(groups.items()) if scope == "all" for q in qs[:CALIBRATION_QUERIES]
    ]


def canary_check(conn: psycopg.Connection, arm: Arm, sample: StudyQuery, probe: list[uuid.UUID]) -> None:
    """The canary (no memberships) gets nothing through this arm: RLS is really in force."""
    arms.check_canary(conn, arm, arms.query_vector(sample.vector_1536, arm.build), CANARY, probe)


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

    def measured(self, cell: Cell) -> bool:
        return cell.key(self.run_id, STAGE) in self.store

    def todo(self, build: Build, settings: list[QuerySetting]) -> int:
        return sum(not self.measured(cell) for _, cell in self.cells(build, settings))

    def planned(self, builds: list[tuple[Build, list[QuerySetting]]]) -> int:
        return sum(1 for b, s in builds for _ in self.cells(b, s))

    def measure_build(self, build: Build, settings: list[QuerySetting]) -> None:
        self.bar.set_postfix_str(f"building {build.key}")
        index.drop_study_indexes(self.conn, column_type=build.column_type)
        self.session.record_build(index.build(self.conn, build, progress=self.session.progress))
        raw: dict[str, list] = {"cell": [], "qid": [], "latency_ns": [], "ids": []}
        todo = [spec for spec, cell in self.cells(build, settings) if not self.measured(cell)]
        try:
            # A design that must not see the shared index (partial) goes last: it drops it.
            ordered = sorted(
                self.grid.designs_on(build), key=lambda d: designs.get(d.name).layout.excludes_shared_index
            )
            for spec in ordered:
                if spec in todo:
                    self.measure_design(build, settings, spec, raw)
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

    def measure_design(
        self, build: Build, settings: list[QuerySetting], spec: DesignSpec, raw: dict[str, list]
    ) -> None:
        design = designs.get(spec.name)
        self.bar.set_postfix_str(f"installing {spec.name} for {build.key}")
        mine = spec.settings(settings)
        installed, _ = designs.bring_up(self.conn, design, build, dict(spec.params))
        try:
            detail = dict(installed.detail)
            if design.layout.installs:
                self.session.record_design(build.key, installed, detail)
                self.session.save()
            if not design.measures(spec.params):
                for setting in mine:
                    self.measure_setting(build, setting, settings, spec, raw)
                return
            # e.g. routed: T is measured at each query setting, just before that setting's cells
            sample = calibration_sample(self.groups)
            detail["thresholds"], detail["calibrations"] = {}, {}
            for setting in mine:
                index.query_settings(self.conn, build, setting.params, setting.iterative_scan)
                calibration = {
                    **design.calibrate(self.conn, build, sample, self.grid.k),
                    "setting": setting.key,
                }
                value = calibration[design.MEASURED]
                detail["thresholds"][setting.key] = value
                detail["calibrations"][setting.key] = calibration
                self.session.record_design(build.key, installed, detail)
                self.session.save()
                self.measure_setting(build, setting, settings, spec, raw, {design.setting_name: value})
        finally:
            design.remove(self.conn)

    def measure_setting(
        self,
        build: Build,
        setting: QuerySetting,
        all_settings: list[QuerySetting],
        spec: DesignSpec,
        raw: dict[str, list],
        measured: dict[str, Any] | None = None,
    ) -> None:
        """One setting's cells under every arm; `measured` (routed's T) is recorded with the settings."""
        applied = {
            **index.query_settings(self.conn, build, setting.params, setting.iterative_scan),
            **(measured or {}),
        }
        first = setting is all_settings[0]
        for access in arms_of(spec):
            variant = (
                seed_policy.seed_policy(self.conn, access)
                if access in POLICY_VARIANTS
                else contextlib.nullcontext()
            )
            with variant:
                arm = Arm(access, build, self.grid.k, spec.name)
                canary_check(self.conn, arm, next(iter(self.groups.values()))[0], self.probe_workspaces)
                for scope in self.grid.scopes_for(access):
                    for bucket in BUCKETS:
                        cell = Cell(build, setting, access, scope, bucket, spec.name, spec.params)
                        if self.groups.get((scope, bucket)) and not self.measured(cell):
                            self.measure_cell(cell, arm, first, applied, raw)

    def measure_cell(
        self, cell: Cell, arm: Arm, first: bool, applied: dict[str, Any], raw: dict[str, list]
    ) -> None:
        queries = self.groups[(cell.scope, cell.bucket)]
        key = cell.key(self.run_id, STAGE)
        self.bar.set_postfix_str(
            f"{cell.design} {cell.build.key} {cell.setting.key} {cell.access} {cell.scope}/{cell.bucket}"
        )
        with MaintenanceWatch(self.conn) as watch:
            result = run_cell(self.conn, arm, queries, self.grid.warmup)
        audits = audit_calls(self.conn, arm, queries) if self.explain else []
        qps = self.throughput(cell, arm, first, queries, result)
        observed = Observed(qps, plans.summarize(audits), watch.flagged)
        row = measurement(cell.fields(self.run_id, STAGE), arm, queries, result, observed)
        row["plan_audit"] = audits if self.explain else None
        row["settings"] = applied
        self.store.add(row)
        for q, a in zip(queries, result.answers, strict=True):
            raw["cell"].append(key)
            raw["qid"].append(q.qid)
            raw["latency_ns"].append(a.latency_ns)
            raw["ids"].append(",".join(str(i) for i in a.ids))
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
    """The first and last query of the cell once more, explained from inside (plans.audit)."""
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
