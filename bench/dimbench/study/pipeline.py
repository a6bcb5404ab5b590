"""`dimbench run`: provision → corpus → settle → screening → confirmation → the run directory → report.

Screening: one index build serves every query setting × access arm × scope × size bucket of its sweep,
a few queries per cell. Confirmation (when the grid has a [confirm] table): the leading candidates again,
interleaved, with enough queries per cell to judge recall against the target (dimbench.confirm).

A run writes its own directory (runs/<profile>/<run id>/ unless --out): results are saved after each
build and each confirmed cell (atomically), so Ctrl-C or a crash loses at most the work in progress and a
rerun of the same identity resumes where it stopped. results/<profile>/ is written only by `dimbench
publish`.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from dimbench.database import db, seed_policy
from dimbench.database.settle import MaintenanceWatch
from dimbench.paths import datasets_dir, repo_root
from dimbench.study import arms, designs, index, plans, runs
from dimbench.study.cells import cell_fields, cell_key
from dimbench.study.grid import Build, DesignSpec, Grid, QuerySetting, load_grid
from dimbench.study.measure import StudyQuery, concurrent_qps, measurement, run_cell
from dimbench.study.results import MeasurementStore, ensure_writable, save_raw
from dimbench.vocabulary import BUCKETS, DEFAULT_DESIGN, DESIGNS, POLICY_VARIANTS

AUDITED = 2  # real calls per cell explained (the first and the last query)
CALIBRATION_QUERIES = 20  # per bucket, for routed's threshold (both paths, 3 repeats each)
CANARY = uuid.uuid5(uuid.NAMESPACE_URL, "dimbench/canary-user-without-memberships")


@dataclass
class StudyOptions:
    profile: str = "small"
    dsn: str | None = None
    pgdata: str | None = None
    out: str | None = None
    fresh: bool = False
    progress: bool = True
    report: bool = True
    corpus: Any = None  # helper-data: an imported, verified corpus.reader.Corpus instead of the spec


@dataclass
class Phases:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)


def grid_label(source: Path | None) -> str | None:
    """The grid file, relative to the checkout when it lives there."""
    if source is None:
        return None
    try:
        return str(source.resolve().relative_to(repo_root()))
    except ValueError:
        return str(source)


def run_scale(options: StudyOptions) -> list[Path]:
    """A scale profile: the same grid on each of its corpora in turn, one run directory per corpus (each
    corpus replaces the one before in the database)."""
    grid = load_grid(options.profile)
    if not grid.corpora:
        return [run(options)]
    out = []
    for corpus in grid.corpora:
        print(f"scale: corpus {corpus}", flush=True)
        out.append(run(options, corpus=corpus))
    return out


def run(options: StudyOptions, corpus: str | None = None) -> Path:
    """Measure every cell of the profile's grid on this machine into this run's directory; return it.

    corpus: one of a scale grid's corpora (default: the grid's first)."""
    from dataclasses import replace

    from dimbench.database import provision
    from dimbench.study.inputs import prepare_corpus

    grid = load_grid(options.profile)
    if corpus is not None:
        grid = replace(grid, corpus=corpus)  # the grid's identity stays the scale grid's
    # Fail before any work if the run cannot be written where it will go.
    ensure_writable(Path(options.out) if options.out else runs.runs_dir() / grid.profile)
    phases = Phases()
    with phases.timed("provision"):
        provisioned = provision.provision(options.dsn, options.pgdata)
    server = server_info(provisioned.dsn, provisioned.info)
    spec_path = options.corpus or datasets_dir() / f"{grid.corpus}.toml"  # helper-data: run --corpus
    with db.connect(provisioned.dsn) as conn:
        clean_up(conn)  # before the load: leftover indexes would slow it (and be fed every row)
    corpus = prepare_corpus(
        spec_path,
        provisioned.dsn,
        phases,
        options.progress,
        calibrate=grid.calibrate,
        # The main command measures the profile asked for: another corpus dimbench loaded is swapped
        # out (the load ledger proves dimbench loaded it; data it did not load is never touched).
        replace=True,
    )
    described = {**corpus.describe(), "generator_version": corpus.corpus.manifest.get("generator_version")}
    git = runs.git_tree()
    ident = runs.identity(
        runs.machine(), server, grid.raw, grid.profile, described, git, runs.packages()["dimbench"]
    )
    out, previous = runs.choose(grid.profile, options.out, ident, options.fresh)
    ensure_writable(out)
    run_info = previous or {
        "run_id": out.name if options.out is None else runs.new_run_id(runs.digest(ident)),
        "identity": ident,
        "identity_digest": runs.digest(ident),
        "profile": grid.profile,
        "grid": grid_label(grid.source),
        "git_sha": git["sha"],
        "git_dirty": git["dirty"],
        "started_at": runs.now(),
        "finished_at": None,
        "machine": ident["machine"],
        "packages": runs.packages(),
        "server": server,
        "corpus": described,
        "builds": [],
        "phases": {},
        "settled": [],
        "confirmation": {"status": "pending" if grid.confirm else "not planned"},
    }
    if previous:
        run_info.setdefault("resumed_at", []).append(runs.now())
    run_info["settled"] = [*run_info.get("settled", []), corpus.settled]
    base_phases = dict(run_info.get("phases") or {})
    store = MeasurementStore(out / "measurements.jsonl")
    session = Session(out, grid.profile, run_info, base_phases, phases)
    session.save()
    try:
        with phases.timed("study"), db.connect(provisioned.dsn) as conn:
            db.use_vectors(conn)
            sweep = measure_grid(
                conn, provisioned.dsn, grid, corpus.queries, store, session, options.progress
            )
            if grid.side_channel and run_info.get("side_channel") is None:
                with phases.timed("side_channel"):
                    run_info["side_channel"] = side_channel(conn, grid, sweep)
                session.save()
            if grid.confirm is not None and run_info["confirmation"]["status"] != "done":
                with phases.timed("confirmation"):
                    confirm_leaders(conn, grid, sweep, store, session, options.progress)
            index.drop_study_indexes(conn)
        run_info["finished_at"] = runs.now()
    finally:
        session.save()
    if options.report:
        render_report(out)
    return out


def clean_up(conn: psycopg.Connection) -> None:
    """What a killed run leaves behind: a policy variant, an installed design (its partial indexes would
    serve `shared`), study indexes."""
    seed_policy.restore(conn)
    for name in DESIGNS:
        if name != DEFAULT_DESIGN:
            designs.module(name).remove(conn)
    index.drop_study_indexes(conn)


class Session:
    """run.json of the run being measured: rewritten after every unit of work (atomically)."""

    def __init__(
        self, out: Path, profile: str, info: dict[str, Any], base_phases: dict[str, float], phases: Phases
    ) -> None:
        self.out, self.profile, self.info, self.base_phases, self.phases = (
            out,
            profile,
            info,
            base_phases,
            phases,
        )

    def save(self) -> None:
        merged = dict(self.base_phases)
        for name, seconds in self.phases.seconds.items():
            merged[name] = round(merged.get(name, 0.0) + seconds, 3)
        self.info["phases"] = merged
        runs.write_runs(self.out, self.profile, [self.info])


@dataclass
class Sweep:
    """Everything one study pass needs; `measure_build` runs one build's whole sweep."""

    conn: psycopg.Connection
    dsn: str
    grid: Grid
    groups: dict[tuple[str, str], list[StudyQuery]]  # (scope, bucket) -> the cell's queries
    store: MeasurementStore
    session: Session
    bar: Any
    probe_workspaces: list[uuid.UUID]
    progress: bool = False
    explain: bool = False  # auto_explain could be loaded: each cell's sampled calls are explained

    @property
    def run_id(self) -> str:
        return str(self.session.info["run_id"])

    def key(
        self,
        build: Build,
        setting: QuerySetting,
        access: str,
        scope: str,
        bucket: str,
        design: DesignSpec | None = None,
    ) -> str:
        return cell_key(self.fields(build, setting, access, scope, bucket, design))

    def fields(
        self,
        build: Build,
        setting: QuerySetting,
        access: str,
        scope: str,
        bucket: str,
        design: DesignSpec | None = None,
    ) -> dict[str, Any]:
        name, params = (design.name, design.params) if design else (DEFAULT_DESIGN, {})
        return cell_fields(self.run_id, "screening", build, setting, access, scope, bucket, name, params)

    def arms_of(self, design: DesignSpec | None) -> list[str]:
        if design is None:
            return list(self.grid.access)
        own_table = getattr(designs.module(design.name), "OWN_TABLE", False)
        # A policy variant is swapped in on public.document_chunks: a design with its own copy of the
        # chunks keeps the harmonized policy, so those arms would measure nothing new there.
        return [a for a in design.access if not (own_table and a in POLICY_VARIANTS)]

    def cells(
        self, build: Build, settings: list[QuerySetting]
    ) -> Iterator[tuple[DesignSpec | None, QuerySetting, str, str, str]]:
        for design in [None, *self.grid.designs_for(build)]:
            for setting in settings if design is None else design.settings(settings):
                for access in self.arms_of(design):
                    for scope in self.grid.scopes_for(access):
                        for bucket in BUCKETS:
                            if self.groups.get((scope, bucket)):
                                yield design, setting, access, scope, bucket

    def todo(self, build: Build, settings: list[QuerySetting]) -> int:
        return sum(
            self.key(build, s, a, sc, b, d) not in self.store
            for d, s, a, sc, b in self.cells(build, settings)
        )

    def planned(self, builds: list[tuple[Build, list[QuerySetting]]]) -> int:
        return sum(1 for b, s in builds for _ in self.cells(b, s))

    def measure_build(self, build: Build, settings: list[QuerySetting]) -> None:
        self.bar.set_postfix_str(f"building {build.key}")
        index.drop_study_indexes(self.conn, column_type=build.column_type)
        record_build(self.session.info, index.build(self.conn, build, progress=self.progress))
        raw: dict[str, list] = {"cell": [], "qid": [], "latency_ns": [], "ids": []}
        todo = {
            d
            for d, s, a, sc, b in self.cells(build, settings)
            if self.key(build, s, a, sc, b, d) not in self.store
        }
        try:
            self.measure_settings(build, settings, settings, None, raw)
            # A design that must not see the shared index (partial) goes last and drops it.
            ordered = sorted(
                self.grid.designs_for(build),
                key=lambda d: getattr(designs.module(d.name), "EXCLUDES_SHARED_INDEX", False),
            )
            for design in ordered:
                if design in todo:
                    self.measure_design(build, settings, design, raw)
        finally:
            self.store.save()
            if raw["cell"]:
                save_raw(
                    self.session.out / "raw",
                    build.key.replace("/", "_"),
                    {k: _array(v) for k, v in raw.items()},
                )
            self.session.info["measured_cells"] = sum(
                r.get("stage") == "screening" for r in self.store.rows.values()
            )
            self.session.save()

    def measure_design(
        self, build: Build, settings: list[QuerySetting], design: DesignSpec, raw: dict[str, list]
    ) -> None:
        module = designs.module(design.name)
        if getattr(module, "EXCLUDES_SHARED_INDEX", False):
            index.drop_study_indexes(self.conn, column_type=build.column_type)
        self.bar.set_postfix_str(f"installing {design.name} for {build.key}")
        mine = design.settings(settings)
        installed = module.install(self.conn, build, dict(design.params))
        try:
            detail = dict(installed.detail)
            record_design(self.session.info, build, installed, detail)
            self.session.save()
            if not (hasattr(module, "calibrate") and design.params.get("threshold") == "measured"):
                self.measure_settings(build, mine, settings, design, raw)
                return
            # routed: T is measured at each query setting, just before that setting's cells
            sample = [
                q
                for (scope, _), qs in sorted(self.groups.items())
                if scope == "all"
                for q in qs[:CALIBRATION_QUERIES]
            ]
            detail["thresholds"], detail["calibrations"] = {}, {}
            for setting in mine:
                index.query_settings(self.conn, build, setting.params, setting.iterative_scan)
                calibration = {
                    **module.calibrate(self.conn, build, sample, self.grid.k),
                    "setting": setting.key,
                }
                detail["thresholds"][setting.key] = calibration["threshold"]
                detail["calibrations"][setting.key] = calibration
                record_design(self.session.info, build, installed, detail)
                self.session.save()
                self.measure_settings(
                    build, [setting], settings, design, raw, {"routed.threshold": calibration["threshold"]}
                )
        finally:
            module.remove(self.conn)

    def measure_settings(
        self,
        build: Build,
        settings: list[QuerySetting],
        all_settings: list[QuerySetting],
        design: DesignSpec | None,
        raw: dict[str, list],
        design_settings: dict[str, Any] | None = None,
    ) -> None:
        """Each setting's cells; `design_settings` (routed's T) are recorded with the cells' settings."""
        for setting in settings:
            applied = index.query_settings(self.conn, build, setting.params, setting.iterative_scan)
            applied = {**applied, **(design_settings or {})}
            for access in self.arms_of(design):
                variant = (
                    seed_policy.seed_policy(self.conn, access)
                    if access in POLICY_VARIANTS
                    else contextlib.nullcontext()
                )
                with variant:
                    self.measure_arm(build, setting, all_settings, access, applied, raw, design)

    def measure_arm(
        self,
        build: Build,
        setting: QuerySetting,
        settings: list[QuerySetting],
        access: str,
        applied: dict[str, Any],
        raw: dict[str, list],
        design: DesignSpec | None = None,
    ) -> None:
        name = design.name if design else DEFAULT_DESIGN
        sample = next(iter(self.groups.values()))[0]
        arms.check_canary(
            self.conn,
            access,
            build,
            arms.query_vector(sample.vector_1536, build),
            CANARY,
            self.probe_workspaces,
            self.grid.k,
            design=name,
        )
        for scope in self.grid.scopes_for(access):
            for bucket in BUCKETS:
                queries = self.groups.get((scope, bucket))
                cell = self.fields(build, setting, access, scope, bucket, design)
                key = cell_key(cell)
                if not queries or key in self.store:
                    continue
                self.bar.set_postfix_str(f"{name} {build.key} {setting.key} {access} {scope}/{bucket}")
                with MaintenanceWatch(self.conn) as watch:
                    result = run_cell(
                        self.conn, build, access, queries, self.grid.k, self.grid.warmup, design=name
                    )
                audits = audit_calls(self.conn, build, access, queries, self.grid.k, name, self.explain)
                qps = throughput(
                    self.dsn, self.grid, build, setting, settings, access, scope, queries, result, name
                )
                row = measurement(
                    cell, build, self.grid.k, queries, result, plans.summarize(audits), qps, watch.flagged
                )
                row["plan_audit"] = audits if self.explain else None
                row["settings"] = applied
                self.store.add(row)
                for q, a in zip(queries, result.answers, strict=True):
                    raw["cell"].append(key)
                    raw["qid"].append(q.qid)
                    raw["latency_ns"].append(a.latency_ns)
                    raw["ids"].append(",".join(str(i) for i in a.ids))
                self.bar.update(1)


def audit_calls(
    conn: psycopg.Connection,
    build: Build,
    access: str,
    queries: list[StudyQuery],
    k: int,
    design: str,
    explain: bool,
) -> list[dict[str, Any]]:
    """The first and last query of the cell once more, explained from inside (plans.audit)."""
    if not explain:
        return []
    picked = [queries[0], queries[-1]] if len(queries) > 1 else list(queries)
    return [plans.audit(conn, build, access, q, k, design) for q in picked[:AUDITED]]


def record_design(run_info: dict[str, Any], build: Build, installed: Any, detail: dict[str, Any]) -> None:
    from dataclasses import asdict

    entry = {**asdict(installed), "detail": detail, "build_key": build.key}
    run_info["designs"] = [
        d
        for d in run_info.get("designs", [])
        if (d.get("design"), d.get("build_key")) != (entry["design"], entry["build_key"])
    ] + [entry]


def study_groups(queries: list[StudyQuery]) -> dict[tuple[str, str], list[StudyQuery]]:
    """Every query of the corpus by (scope, bucket), in corpus order (screening takes the first few)."""
    groups: dict[tuple[str, str], list[StudyQuery]] = {}
    for q in queries:
        groups.setdefault((q.scope, q.bucket), []).append(q)
    return groups


def measure_grid(
    conn: psycopg.Connection,
    dsn: str,
    grid: Grid,
    queries: list[StudyQuery],
    store: MeasurementStore,
    session: Session,
    progress: bool,
) -> Sweep:
    """Screening: every cell of the grid, `queries_per_cell` queries each."""
    from tqdm import tqdm

    pools = study_groups(queries)
    groups = {key: qs[: grid.queries_per_cell] for key, qs in pools.items()}
    builds = list(grid.builds())
    probe = sorted({ws for q in queries for ws in q.visible})[:1]
    with tqdm(desc="screening", unit="cell", disable=not progress) as bar:
        sweep = Sweep(conn, dsn, grid, groups, store, session, bar, probe, progress, plans.available(conn))
        session.info["plan_audit"] = "auto_explain" if sweep.explain else None
        session.info["planned_cells"] = sweep.planned(builds)
        bar.total = sum(sweep.todo(b, s) for b, s in builds)
        if bar.total:
            index.drop_study_indexes(conn)  # nothing of an earlier run's builds is measured again
        for build, settings in builds:
            if sweep.todo(build, settings):
                sweep.measure_build(build, settings)
    # Each column type's last build stays for confirmation to reuse; run() drops them at the end.
    session.info["measured_cells"] = sum(r.get("stage") == "screening" for r in store.rows.values())
    sweep.groups = pools
    return sweep


def side_channel(conn: psycopg.Connection, grid: Grid, sweep: Sweep) -> list[dict[str, Any]]:
    """Each design (and shared) on its first column type's hnsw build at its first setting, without and
    with a foreign tenant's cluster at the victims' queries (dimbench.sidechannel)."""
    from dimbench.study import sidechannel
    from dimbench.study.designs import routed

    assert grid.side_channel is not None
    hnsw = next(((b, s) for b, s in grid.builds() if b.index == "hnsw"), None)
    if hnsw is None:
        return []
    first_build, settings = hnsw
    relaxed = [s for s in settings if s.iterative_scan == "relaxed_order"] or settings

    def entry(spec: DesignSpec | None) -> tuple[str, Build, Any, Any]:
        column_type = spec.column_types[0] if spec else first_build.column_type
        build = Build(column_type, "hnsw", first_build.params)
        setting = (spec.settings(settings) if spec else relaxed)[0]
        module = designs.module(spec.name) if spec else None
        params = dict(spec.params) if spec else {}
        measured = next(
            (
                routed.threshold_for(d.get("detail") or {}, setting.key)
                for d in sweep.session.info.get("designs", [])
                if spec and d["design"] == spec.name and d["build_key"] == build.key
            ),
            None,
        )
        if params.get("threshold") == "measured" and measured is not None:
            params["threshold"] = measured

        def install() -> None:
            excludes = module is not None and getattr(module, "EXCLUDES_SHARED_INDEX", False)
            needs = module is None or getattr(module, "NEEDS_SHARED_INDEX", False)
            if excludes:
                index.drop_study_indexes(conn, column_type=build.column_type)
            elif needs and index.index_name(build) not in index.study_indexes(conn):
                index.drop_study_indexes(conn, column_type=build.column_type)
                index.build(conn, build)
            if module is not None:
                module.install(conn, build, params)
            index.query_settings(conn, build, setting.params, setting.iterative_scan)

        def remove() -> None:
            if module is not None:
                module.remove(conn)

        return (spec.name if spec else DEFAULT_DESIGN), build, install, remove

    # A design that drops the shared index (partial) goes first: the index the others need is then
    # built once, after it, and still stands for confirmation, which reuses it instead of building it.
    excluding = [d for d in grid.designs if getattr(designs.module(d.name), "EXCLUDES_SHARED_INDEX", False)]
    others = [d for d in grid.designs if d not in excluding]
    entries = [*(entry(d) for d in excluding), entry(None), *(entry(d) for d in others)]
    return sidechannel.measure(
        conn,
        entries,
        sweep.groups,
        grid.side_channel["queries"],
        grid.k,
        grid.warmup,
        grid.side_channel["per_query"],
        grid.side_channel.get("cycles", 3),
    )


def confirm_leaders(
    conn: psycopg.Connection,
    grid: Grid,
    sweep: Sweep,
    store: MeasurementStore,
    session: Session,
    progress: bool,
) -> None:
    """Confirmation: the leading candidates of screening, interleaved, until every cell is decided."""
    from tqdm import tqdm

    from dimbench.report.load import Results
    from dimbench.study import confirm

    assert grid.confirm is not None
    info = session.info
    screening = [r for r in store.rows.values() if r["run_id"] == sweep.run_id and r["stage"] == "screening"]
    results = Results(session.out, info, screening, [info])
    leaders = confirm.select(results, grid.confirm, screening)
    entrants = [confirm.Entrant.of(c.config) for c in leaders]
    pools = {key: qs[: grid.confirm.max_queries] for key, qs in sweep.groups.items()}
    stage = confirm.Confirmation(
        conn,
        grid.confirm,
        pools,
        store,
        sweep.run_id,
        grid.k,
        grid.warmup,
        session.out / "raw" / "confirmation-order.jsonl",
        CANARY,
        sweep.probe_workspaces,
        grid.concurrency,
    )
    stage.screened_designs = results.designs(sweep.run_id)
    (session.out / "raw").mkdir(parents=True, exist_ok=True)
    info["confirmation"] = {
        "status": "running",
        "candidates": [e.label for e in entrants],
        "max_queries_per_cell": grid.confirm.max_queries,
        "pool_per_cell": {f"{s}/{b}": len(qs) for (s, b), qs in sorted(pools.items())},
    }
    session.save()
    total = sum(len(ms) for members in confirm.rounds(entrants) for _, _, ms in stage.cells(members))
    try:
        with tqdm(desc="confirmation", unit="cell", total=total, disable=not progress) as bar:
            stage.run(entrants, bar)
        info["confirmation"]["status"] = "done"
    finally:
        info["confirmation"]["queries_per_cell"] = dict(sorted(stage.queries_used.items()))
        info["confirmation"]["standing"] = stage.standing
        info["confirmation"]["builds"] = stage.builds
        info["confirmation"]["designs"] = stage.designs
        session.save()


def _array(values: list) -> Any:
    import numpy as np

    return np.asarray(values)


def throughput(
    dsn: str,
    grid: Grid,
    build: Build,
    setting: QuerySetting,
    settings: list[QuerySetting],
    access: str,
    scope: str,
    queries: list[StudyQuery],
    result: Any,
    design: str = DEFAULT_DESIGN,
) -> dict[str, float | None]:
    """QPS at 1 client from the sequential run; at more clients only for the first setting of each
    build and the service and rls arms over all of a user's workspaces (enough for the curve)."""
    total_ns = sum(a.latency_ns for a in result.answers)
    qps: dict[str, float | None] = {str(c): None for c in grid.concurrency}
    qps["1"] = len(result.answers) / (total_ns / 1e9) if total_ns else None
    if setting is not settings[0] or access not in ("service", "rls") or scope != "all":
        return qps

    def connect() -> psycopg.Connection:
        return db.use_vectors(db.connect(dsn))

    def setup(c: psycopg.Connection) -> None:
        index.query_settings(c, build, setting.params, setting.iterative_scan)

    for clients in grid.concurrency:
        if clients > 1:
            qps[str(clients)] = concurrent_qps(
                connect, build, access, queries, grid.k, clients, grid.concurrency_queries, setup, design
            )
    return qps


def record_build(run_info: dict[str, Any], built: Any) -> None:
    from dataclasses import asdict

    entry = asdict(built)
    run_info["builds"] = [b for b in run_info["builds"] if b.get("build_key") != entry["build_key"]] + [entry]


def render_report(out: Path) -> None:
    """DECISION.md always; the plots too when matplotlib (the `report` extra) is installed."""
    import importlib.util
    import sys

    from dimbench.report import decision_record, render
    from dimbench.report.load import read_results

    if importlib.util.find_spec("matplotlib") is None:
        decision_record.write(read_results(out), out / "DECISION.md")
        print(
            f"plots skipped: they need matplotlib (pip install 'dimbench[report]', then dimbench report "
            f"--results {out})",
            file=sys.stderr,
        )
        return
    render(out)


def server_info(dsn: str, info: db.ServerInfo) -> dict[str, Any]:
    with db.connect(dsn) as conn:
        changed = dict(
            conn.execute(
                "select name, setting || coalesce(unit, '') from pg_settings"
                " where source in ('configuration file', 'database', 'user', 'command line')"
                "   and name not in ('data_directory', 'config_file', 'hba_file', 'ident_file')"
                " order by name"
            ).fetchall()
        )
        extver = conn.execute("select extversion from pg_extension where extname = 'vector'").fetchone()
    return {
        "postgresql": info.server_version,
        "pgvector": extver[0] if extver else None,
        "settings_changed": changed,
        "dsn": db.redact(dsn),
    }
