"""`dimbench live`: each design under the platform's writes, on a copy of the corpus.

Every number the study publishes comes from a database nobody writes to. Here, for each design: the
corpus is loaded as `dimbench run` loads it, then copied (`create database … template`, a file copy),
the design is brought up on the copy and measured in this order —

  1. searches at an offered rate (pgbench, open loop), idle and then beside writers offering the grid's
     ingest rate with its churn: p95 of each, their ratio with its interval, recall (one snapshot per
     judgement), freshness (a search right after an insert committed finds the new chunk);
  2. the runbook: steps of inserts, document replacements and searches, recall at each step against that
     step's own truth;
  3. one tenant's chunks partly replaced: latency and recall before, after, after VACUUM, after
     REINDEX CONCURRENTLY + VACUUM, each with its duration;
  4. maximum ingest with 1, 2, 4 … writers into one workspace and into many (last: it grows the copy most)

— and the copy is dropped. The corpus `dimbench run` measures is never written: its row count and a
checksum of its ids and vectors are taken before and after (live.json's `corpus_check`). Ctrl-C keeps
what was measured (live.json is saved after every phase) and drops the copy; a copy left by a killed
server is dropped by the next `dimbench live`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from dimbench import files
from dimbench.database import db
from dimbench.errors import DimbenchError
from dimbench.evidence.live import judge
from dimbench.study import designs, index, live_migration, live_phases, pipeline, runs
from dimbench.study.configs import Arm, Build, QuerySetting
from dimbench.study.grid import Grid, live_section, load_grid
from dimbench.study.live_spec import LiveSpec
from dimbench.study.session import Phases
from dimbench.vocabulary import ACCESS_ARMS, DESIGNS, SCOPES_BY_ACCESS

COPY_PREFIX = "dimbench_live_"  # the copies this command makes (and may drop)
CALIBRATION_QUERIES = 3  # per bucket, as screening calibrates a measured parameter


@dataclass
class LiveOptions:
    profile: str = "small"
    designs: list[str] | None = None
    dsn: str | None = None
    pgdata: str | None = None
    out: str | None = None
    progress: bool = True


@dataclass(frozen=True)
class Source:
    """The study's database (never written here) and the corpus loaded into it."""

    dsn: str
    name: str
    corpus: Any  # inputs.StudyCorpus


@dataclass(frozen=True)
class Plan:
    """What will be measured, decided (and checked) before anything runs."""

    grid: Grid
    spec: LiveSpec
    build: Build
    setting: QuerySetting
    designs: tuple[tuple[str, dict[str, Any]], ...]  # (name, params)
    skipped: dict[str, str]  # design -> why it is not measured


def plan(options: LiveOptions) -> Plan:
    """The grid's [live] section against the grid itself: one line for anything impossible."""
    grid = load_grid(options.profile)
    if grid.corpora:
        raise DimbenchError(f"dimbench live measures one corpus: profile {grid.profile} is a scale grid")
    pipeline.check_corpora(grid)
    return plan_grid(grid, options.designs)


def plan_grid(
    grid: Grid, asked_designs: list[str] | None, *, strict: bool = True, prefer: Any = None
) -> Plan:
    """`strict=False` (the live stage of `run`, asked for the decided designs): a design that cannot be
    measured live, or does not ride on the live build, is skipped with its reason instead of refused.
    `prefer` (the run's choice, an evidence.rule.Config): its build and query setting where the live
    section's column and index are the choice's (else the grid's first of each)."""
    spec = live_section(grid)
    where = f"{grid.source} [live]"
    unknown = sorted(set(spec.corpora) - set(grid.corpora or [grid.corpus]))
    if unknown:
        raise DimbenchError(
            f"{where}: corpora {unknown} are not among the grid's {grid.corpora or [grid.corpus]}"
        )
    if spec.column_type not in grid.column_types:
        raise DimbenchError(
            f"{where}: column_type {spec.column_type!r} is not among the grid's {grid.column_types}"
        )
    if spec.access not in ACCESS_ARMS or spec.access not in grid.access:
        raise DimbenchError(f"{where}: access {spec.access!r} is not among the grid's {grid.access}")
    found = [(b, s) for b, s in grid.builds() if b.column_type == spec.column_type and b.index == spec.index]
    if not found:
        raise DimbenchError(f"{where}: the grid builds no {spec.index} index on {spec.column_type}")
    build, settings = next(
        ((b, q) for b, q in found if prefer is not None and b.key == prefer.build_key), found[0]
    )
    entries = grid.designs_on(build)
    by_name = {d.name: d for d in entries}
    asked = asked_designs or list(spec.designs) or [d.name for d in entries]
    chosen, skipped = [], {}
    for name in asked:
        if name not in DESIGNS:
            raise DimbenchError(f"unknown design {name!r}: choose among {', '.join(DESIGNS)}")
        if name not in by_name:
            if not strict:
                skipped[name] = f"not measured on {build.key} in this grid"
                continue
            raise DimbenchError(f"{where}: design {name!r} is not measured on {build.key} in this grid")
        if DESIGNS[name].own_table:
            why = (
                "keeps its own copy of the chunks: the apps' writes to public.document_chunks never reach it"
            )
            if strict and (asked_designs or spec.designs):
                raise DimbenchError(f"design {name!r} cannot be measured live: it {why}")
            skipped[name] = why
            continue
        chosen.append((name, dict(by_name[name].params)))
    if not chosen:
        raise DimbenchError(f"{where}: no design to measure")
    spec_of = by_name[chosen[0][0]]
    offered = spec_of.settings(settings) or settings
    setting = next((q for q in offered if _is_setting(prefer, build, q)), offered[0])
    return Plan(grid, spec, build, setting, tuple(chosen), skipped)


def _is_setting(prefer: Any, build: Build, setting: QuerySetting) -> bool:
    """Whether `setting` on `build` is the preferred configuration's query setting."""
    return (
        prefer is not None
        and prefer.build_key == build.key
        and json.loads(prefer.query_params) == setting.params
        and prefer.iterative_scan == setting.iterative_scan
    )


def checksum(conn: psycopg.Connection) -> dict[str, Any]:
    """Row count and a digest of every chunk's id and both vectors, and of the memberships: what a
    later `dimbench run` measures, compared before and after the live stage."""
    chunks = conn.execute(
        "select count(*), md5(coalesce(string_agg(md5(id::text || coalesce(embedding_768::text, '')"
        " || coalesce(embedding_1536::text, '')), '' order by id), ''))"
        " from public.document_chunks"
    ).fetchone()
    members = conn.execute(
        "select count(*), md5(coalesce(string_agg(workspace_id::text || user_id::text || role, ','"
        " order by workspace_id, user_id), '')) from public.workspace_members"
    ).fetchone()
    assert chunks is not None and members is not None
    return {
        "chunks": int(chunks[0]),
        "chunks_md5": chunks[1],
        "members": int(members[0]),
        "members_md5": members[1],
    }


def admin_dsn(dsn: str) -> str:
    """Another database of the same server to create and drop copies from (a template must be idle)."""
    return db.with_dbname(dsn, "postgres")


def leftover_copies(admin: psycopg.Connection) -> list[str]:
    rows = admin.execute(
        "select datname from pg_database where starts_with(datname, %s) order by 1", (COPY_PREFIX,)
    ).fetchall()
    return [r[0] for r in rows]


def drop_copy(admin: psycopg.Connection, name: str) -> None:
    if not name.startswith(COPY_PREFIX):  # never anything this command did not make
        raise DimbenchError(f"refusing to drop {name!r}: not a copy dimbench live made")
    admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def make_copy(admin: psycopg.Connection, source: str, design: str) -> str:
    name = f"{COPY_PREFIX}{design}_{uuid.uuid4().hex[:8]}"
    try:
        admin.execute(
            sql.SQL("create database {} template {} strategy file_copy").format(
                sql.Identifier(name), sql.Identifier(source)
            )
        )
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or ["failed"])[0]
        raise DimbenchError(
            f"cannot copy database {source} for the live stage ({reason}): dimbench live needs a server "
            "where it may create databases and no other session is connected to the study's database"
        ) from None
    return name


def destination(options: LiveOptions, profile: str) -> Path:
    """--out (new, empty, or a run directory dimbench made), else runs/<profile>/live-<time>."""
    directory = runs.destination(profile, options.out)
    if options.out is None:
        directory = directory / f"live-{runs.now().replace(':', '').replace('-', '')}"
    files.check_writable(directory)
    return directory


def run_live(options: LiveOptions) -> Path:
    """Measure every planned design live; return the directory holding live.json."""
    from dimbench.database import provision
    from dimbench.paths import datasets_dir
    from dimbench.study.inputs import prepare_corpus

    chosen = plan(options)
    out = destination(options, chosen.grid.profile)
    provisioned = provision.provision(options.dsn, options.pgdata)
    drop_leftovers(provisioned.dsn)
    with db.connect(provisioned.dsn) as conn:
        pipeline.clean_up(conn)
    phases = Phases()
    corpus = prepare_corpus(
        datasets_dir() / f"{chosen.grid.corpus}.toml", provisioned.dsn, phases, options.progress, replace=True
    )
    runs.create(out)
    measure_plan(
        chosen, provisioned.dsn, pipeline.server_info(provisioned.dsn, provisioned.info), corpus, out
    )
    return out


def drop_leftovers(dsn: str) -> None:
    with db.connect(admin_dsn(dsn)) as admin:
        for name in leftover_copies(admin):
            drop_copy(admin, name)
            print(
                f"dropped {name}: a live copy a killed run left behind (the corpus itself was never written)"
            )
        live_migration.drop_leftovers(admin)


def in_run(
    grid: Grid,
    dsn: str,
    server: dict[str, Any],
    corpus: Any,
    out: Path,
    asked: set[str] | None,
    prefer: Any = None,
) -> bool:
    """The live stage of `dimbench run`: `asked` designs (None: every design of the live build) into
    out/live.json, on copies of the corpus already loaded at `dsn` (no session may hold it open).
    Resumable: a finished live.json is kept. Returns whether it measured anything."""
    path = out / "live.json"
    if path.is_file() and files.read_json(path).get("status") == "done":
        return False
    chosen = plan_grid(grid, sorted(asked) if asked is not None else None, strict=False, prefer=prefer)
    drop_leftovers(dsn)
    measure_plan(chosen, dsn, server, corpus, out)
    return True


def measure_plan(chosen: Plan, dsn: str, server: dict[str, Any], corpus: Any, out: Path) -> None:
    """Every design of the plan into out/live.json, saved after every phase; the corpus checked
    unchanged before and after."""
    source = str(psycopg.conninfo.conninfo_to_dict(dsn).get("dbname") or "postgres")
    with db.connect(dsn) as conn:
        before = checksum(conn)
    live: dict[str, Any] = {
        "kind": "dimbench live",
        "profile": chosen.grid.profile,
        "grid": pipeline.grid_label(chosen.grid.source),
        "corpus": {**corpus.describe(), "generator_version": corpus.corpus.manifest.get("generator_version")},
        "server": server,
        "machine": runs.machine(),
        "git": runs.git_tree(),
        "started_at": runs.now(),
        "finished_at": None,
        "status": "running",
        "settings": chosen.spec.describe(),
        "build": chosen.build.key,
        "query_setting": chosen.setting.key,
        "access": chosen.spec.access,
        "not_measured": chosen.skipped,
        "designs": {},
        "corpus_check": {"before": before},
    }
    path = out / "live.json"

    def save() -> None:
        files.write_json(path, live)

    save()
    try:
        for name, params in chosen.designs:
            live["designs"][name] = entry = {"status": "running", "params": params}
            save()
            print(
                f"live: {name} on {chosen.build.key} ({chosen.setting.key}, {chosen.spec.access})", flush=True
            )
            measure_design(Source(dsn, source, corpus), chosen, (name, params), entry, save)
            entry["status"] = "done"
            entry["verdict"] = judge(entry, name, chosen.spec.p95_bound).__dict__
            save()
        live_migration.measure(chosen, dsn, live, save)  # [live.migration]: the upgrade under traffic
        live["status"] = "done"
    except BaseException as exc:  # whatever stopped it, live.json says so (and keeps what was measured)
        live["status"] = "failed" if isinstance(exc, Exception) else "interrupted"
        if isinstance(exc, Exception):
            live["error"] = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise
    finally:
        if live["status"] == "running":  # stopped between the lines above (a second Ctrl-C)
            live["status"] = "interrupted"
        live["finished_at"] = runs.now()
        with db.connect(dsn) as conn:
            after = checksum(conn)
        live["corpus_check"].update(after=after, unchanged=after == before)
        save()
    if after != before:  # cannot happen unless something else wrote to it: say so loudly
        raise DimbenchError(
            f"the corpus changed during the live stage ({before} → {after}): rerun `dimbench run`"
        )


def measure_design(
    source: Source,
    chosen: Plan,
    design_params: tuple[str, dict[str, Any]],
    entry: dict,
    save: Callable[[], None],
) -> None:
    """One design on its own fresh copy of the corpus, phase after phase; the copy dropped after."""
    name, params = design_params
    spec, dsn, corpus = chosen.spec, source.dsn, source.corpus
    with db.connect(admin_dsn(dsn)) as admin:
        copy = make_copy(admin, source.name, name)
    copy_dsn = db.with_dbname(dsn, copy)
    try:
        with db.connect(copy_dsn) as conn:
            db.use_vectors(conn)
            design = designs.get(name)
            installed, built = designs.bring_up(conn, design, chosen.build, params)
            entry["installed"] = {
                "seconds": installed.seconds,
                "index_build_s": built.seconds if built else None,
            }
            gucs = index.query_settings(
                conn, chosen.build, chosen.setting.params, chosen.setting.iterative_scan
            )
            arm = Arm(spec.access, chosen.build, chosen.grid.k, name)
            scopes = SCOPES_BY_ACCESS[spec.access]
            queries = [q for q in corpus.queries if q.scope in scopes]
            if design.measures(params):
                sample = [q for q in queries if q.scope == "all"]
                by_bucket: dict[str, list] = {}
                for q in sample:
                    by_bucket.setdefault(q.bucket, []).append(q)
                picked = [q for qs in by_bucket.values() for q in qs[:CALIBRATION_QUERIES]]
                calibration = design.calibrate(conn, chosen.build, picked, chosen.grid.k)
                entry["calibration"] = {design.MEASURED: calibration[design.MEASURED]}
            ctx = live_phases.Context(
                copy_dsn,
                spec,
                arm,
                gucs,
                queries,
                corpus.corpus.n_chunks,
                save,
                members=live_phases.members(conn),
            )
            save()
            live_phases.searches(ctx, conn, entry)
            live_phases.runbook(ctx, conn, entry)
            live_phases.replacement(ctx, conn, entry)
            live_phases.ingest_max(ctx, entry)
            check = design.live_check(conn)  # e.g. routed's counts against the rows, after every write
            if check is not None:
                entry["count_check"] = check
                save()
    finally:
        with db.connect(admin_dsn(dsn)) as admin:
            drop_copy(admin, copy)


def check_loadgen(options: LiveOptions, seconds: float = 5.0) -> int:
    """`dimbench live --check-loadgen`: loadgen.qps against pgbench's own tps for the same requests at 4
    and 8 clients, on the study's database as loaded (read only). Exit 1 below 0.9."""
    from dimbench.database import provision
    from dimbench.paths import datasets_dir
    from dimbench.study import loadgen
    from dimbench.study.inputs import prepare_corpus

    chosen = plan(options)
    provisioned = provision.provision(options.dsn, options.pgdata)
    with db.connect(provisioned.dsn) as conn:
        pipeline.clean_up(conn)
    corpus = prepare_corpus(
        datasets_dir() / f"{chosen.grid.corpus}.toml",
        provisioned.dsn,
        Phases(),
        options.progress,
        replace=True,
    )
    arm = Arm(chosen.spec.access, Build(chosen.build.column_type, "exact", {}), chosen.grid.k)
    scopes = SCOPES_BY_ACCESS[arm.access]
    checks = loadgen.check(
        provisioned.dsn, arm, [q for q in corpus.queries if q.scope in scopes], (4, 8), seconds
    )
    for c in checks:
        print(f"loadgen vs pgbench, {c.summary()}")
    return 0 if all(c.ok for c in checks) else 1
