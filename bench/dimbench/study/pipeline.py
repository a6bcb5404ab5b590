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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from dimbench.database import db, seed_policy
from dimbench.errors import DimbenchError
from dimbench.files import check_writable
from dimbench.paths import datasets_dir, repo_root
from dimbench.study import deployment, designs, index, runs, sidechannel
from dimbench.study.confirm import confirm_leaders
from dimbench.study.grid import Grid, live_section, load_grid
from dimbench.study.results import MeasurementStore
from dimbench.study.screening import measure_grid
from dimbench.study.session import Phases, Session


@dataclass
class StudyOptions:
    profile: str = "small"
    dsn: str | None = None
    pgdata: str | None = None
    out: str | None = None
    fresh: bool = False
    progress: bool = True
    # Called with each finished run's directory (the CLI renders its report there): the study itself never
    # imports the report.
    finished: Callable[[Path], None] | None = None
    corpus: Any = None  # an imported, verified corpus.reader.Corpus instead of the grid's spec
    side_channel: str = "decided"  # "decided": the chosen design and its tie set; "all": every design
    live: str = "decided"  # the grid's [live] stage: "decided" (choice, tie set, shared), "all", "off"


def grid_label(source: Path | None) -> str | None:
    """The grid file, relative to the checkout when it lives there."""
    if source is None:
        return None
    try:
        return str(source.resolve().relative_to(repo_root()))
    except ValueError:
        return str(source)


def check_corpora(grid: Grid, imported: Any = None) -> None:
    """Before any work: every corpus the grid names is a valid spec whose ground truth covers the grid's k
    and that carries every embedding the grid's column types search (`imported`: run --corpus's Corpus)."""
    from dimbench.corpus.reader import Corpus
    from dimbench.corpus.spec import load_spec
    from dimbench.study.inputs import check_columns

    where = str(grid.source or "grid")
    if isinstance(imported, Corpus):
        check_columns(grid.column_types, imported.has_ada, imported.name, where)
    for name in grid.corpora or [grid.corpus]:
        spec = load_spec(datasets_dir() / f"{name}.toml")
        if not isinstance(imported, Corpus):
            check_columns(grid.column_types, spec.ada, name, where)
        if grid.k > spec.k:
            raise DimbenchError(
                f"{grid.source or 'grid'}: k = {grid.k} exceeds corpus {name}'s k = {spec.k} (its exact "
                f"ground truth holds {spec.k} neighbours per query): lower k or raise corpus.k"
            )


def run_scale(options: StudyOptions) -> list[Path]:
    """A scale profile: the same grid on each of its corpora in turn, one run directory per corpus (each
    corpus replaces the one before in the database)."""
    grid = load_grid(options.profile)
    check_corpora(grid)
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
    check_corpora(grid, options.corpus)
    live_stage = "live" in grid.raw and options.live != "off"
    if live_stage:  # an impossible [live] section is one line before any work
        from dimbench.study import live  # here: live.py builds on this module

        live.plan_grid(grid, None, strict=False)
        # a scale grid's [live] may name the corpora it runs on (the live stage costs minutes a corpus)
        live_stage = not live_section(grid).corpora or grid.corpus in live_section(grid).corpora
    # Fail before any work if the run cannot be written where it will go (or must not be).
    check_writable(runs.destination(grid.profile, options.out))
    phases = Phases()
    with phases.timed("provision"):
        provisioned = provision.provision(options.dsn, options.pgdata)
    if provisioned.report.restored:  # something of the schema had been dropped: say what was re-created
        print(provisioned.report.summary(), flush=True)
    server = server_info(provisioned.dsn, provisioned.info)
    spec_path = options.corpus or datasets_dir() / f"{grid.corpus}.toml"  # run --corpus: an imported corpus
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
    ident = runs.identity(server, grid.raw, grid.profile, described, git)
    out, previous = runs.choose(grid.profile, options.out, ident, options.fresh)
    runs.create(out)
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
        print(
            f"resuming run {run_info['run_id']} in {out}: {run_info.get('measured_cells') or 0} of "
            f"{run_info.get('planned_cells') or '?'} screening cells measured, confirmation "
            f"{run_info['confirmation'].get('status')}",
            flush=True,
        )
    run_info["settled"] = [*run_info.get("settled", []), corpus.settled]
    store = MeasurementStore(out / "measurements.jsonl")
    session = Session(
        out, grid.profile, run_info, phases, dict(run_info.get("phases") or {}), options.progress
    )
    session.save()
    try:
        with phases.timed("study"), db.connect(provisioned.dsn) as conn:
            db.use_vectors(conn)
            sweep = measure_grid(conn, provisioned.dsn, grid, corpus.queries, store, session)
            if grid.confirm is not None and run_info["confirmation"]["status"] != "done":
                with phases.timed("confirmation"):
                    confirm_leaders(conn, grid, sweep, store, session)
            if grid.side_channel and run_info.get("side_channel") is None:
                # Where it decides something (the chosen design and its tie set, beside shared), unless
                # every design was asked for.
                only = None if options.side_channel == "all" else decided_designs(store, session)
                with phases.timed("side_channel"):
                    entrants = sidechannel.entrants(grid, session, only)
                    # Each cluster insert and delete (VACUUM) pays for every standing hnsw index: keep only
                    # the entrants' and the choice's (the deployment stage's CIC reuses that one).
                    chosen = deployment.chosen(store, session)
                    keep = {index.index_name(e.build) for e in entrants} | (
                        {index.index_name(deployment.build_of(chosen))} if chosen else set()
                    )
                    index.drop_study_indexes(conn, keep=keep)
                    run_info["side_channel"] = sidechannel.measure(
                        conn, entrants, sweep.groups, grid.side_channel, grid.k, grid.warmup
                    )
                    run_info["side_channel_designs"] = "all" if only is None else sorted(only)
                session.save()
        if run_info.get("deployment") is None:  # its own connections: it restarts an embedded server
            with phases.timed("deployment"):
                target = db.resolve_target(options.dsn, options.pgdata)
                config = deployment.chosen(store, session)
                run_info["deployment"] = deployment.measure(
                    provisioned.dsn, target, config, run_info, sweep.groups, grid.k
                )
            session.save()
        # the live stage at the choice's build and query setting (its section judges the choice); its
        # index stays for the copies to carry (a file copy, not one build per design: minutes at 1M)
        prefer = deployment.chosen(store, session) if live_stage else None
        keep = (
            {index.index_name(live.plan_grid(grid, None, strict=False, prefer=prefer).build)}
            if live_stage
            else set()
        )
        with db.connect(provisioned.dsn) as conn:
            designs.remove_all(conn)  # the copies that stood between stages (designs/standing.py)
            index.drop_study_indexes(conn, keep=keep)
        if live_stage:  # after the study's connection is closed: the live copies need an idle template
            only = None if options.live == "all" else decided_designs(store, session) | {"shared"}
            with phases.timed("live"):
                live.in_run(grid, provisioned.dsn, server, corpus, out, only, prefer)
            with db.connect(provisioned.dsn) as conn:
                index.drop_study_indexes(conn)
        run_info["finished_at"] = runs.now()
    finally:
        session.save()
    if options.finished is not None:
        options.finished(out)
    return out


def decided_designs(store: MeasurementStore, session: Session) -> set[str]:
    """The designs of this run's choice and its tie set (by the rule on what was measured so far)."""
    from dimbench.evidence.results import Results
    from dimbench.evidence.rule import decide

    rows = [r for r in store.rows.values() if r["run_id"] == session.run_id]
    decision = decide(Results(session.out, session.info, rows, [session.info]))
    return {c.config.design for c in decision.tied} | (
        {decision.chosen.config.design} if decision.chosen else set()
    )


def clean_up(conn: psycopg.Connection) -> None:
    """What a killed run leaves behind: a policy variant, an installed design (its partial indexes would
    serve `shared`), study indexes."""
    seed_policy.restore(conn)
    designs.remove_all(conn)
    index.drop_study_indexes(conn)


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
