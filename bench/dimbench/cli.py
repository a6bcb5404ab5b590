"""The `dimbench` command line. Every failure the user can act on is one line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

import psycopg

from dimbench.cliargs import OneLineParser, add_target_args, positive_float, positive_int
from dimbench.errors import DimbenchError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
SPEC_HELP = "a spec file, or the name of a shipped spec (tiny, smoke, small, medium, large)"
PROFILE_HELP = "a grid of bench/grids: smoke, tiny, small (default), scale, medium, large"


# --- commands ------------------------------------------------------------------------------------


def cmd_db_up(args: argparse.Namespace) -> int:
    from dimbench.database.db import EmbeddedServer, resolve_target

    target = resolve_target(None, args.pgdata)
    assert target.pgdata is not None
    server = EmbeddedServer(target.pgdata)
    was_running = server.running()
    dsn = server.start()
    print(f"embedded PostgreSQL {'already running' if was_running else 'started'} in {target.pgdata}")
    print(dsn)
    return 0


def cmd_db_down(args: argparse.Namespace) -> int:
    from dimbench.database.db import EmbeddedServer, resolve_target

    target = resolve_target(None, args.pgdata)
    assert target.pgdata is not None
    stopped = EmbeddedServer(target.pgdata).stop()
    print(f"embedded PostgreSQL {'stopped' if stopped else 'was not running'} ({target.pgdata})")
    return 0


def cmd_schema_apply(args: argparse.Namespace) -> int:
    from dimbench.database import provision

    result = provision.provision(args.dsn, args.pgdata)
    print(result.report.summary())
    return 0


def study_options(args: argparse.Namespace):  # -> study.StudyOptions (imported lazily)
    from dimbench.report import render_run
    from dimbench.study import pipeline as study

    return study.StudyOptions(
        profile=args.profile,
        dsn=args.dsn,
        pgdata=args.pgdata,
        out=getattr(args, "out", None),
        fresh=getattr(args, "fresh", False),
        progress=not args.no_progress,
        finished=render_run,
        side_channel=getattr(args, "side_channel", "decided"),
        live=getattr(args, "live", "decided"),
        corpus=imported_corpus(args.corpus) if getattr(args, "corpus", None) else None,
    )


def imported_corpus(directory: str):  # -> corpus.reader.Corpus, verified and embedded
    from pathlib import Path

    from dimbench.corpus.generate import verify
    from dimbench.corpus.reader import Corpus

    manifest = verify(Path(directory))
    if not manifest.get("embedded", True):
        raise DimbenchError(f"{directory} has no embeddings yet: run `dimbench corpus embed` first")
    return Corpus(Path(directory), manifest)


def cmd_run(args: argparse.Namespace) -> int:
    from dimbench.report.publish import compare_with_published
    from dimbench.study import pipeline as study
    from dimbench.study.grid import load_grid
    from dimbench.study.runs import read_runs

    options = study_options(args)
    if options.corpus is not None:
        if load_grid(options.profile).corpora:
            raise DimbenchError(f"--corpus studies one corpus: profile {options.profile} is a scale grid")
        outs = [study.run(options)]
    else:
        outs = study.run_scale(options)
    for out in outs:
        run = read_runs(out)[0]
        print(
            f"run {run['run_id']}: {run.get('measured_cells')} of {run.get('planned_cells')} screening "
            f"cells, confirmation {run['confirmation']['status']}, measured on this machine"
        )
        print(f"decision record: {out / 'DECISION.md'}")
    if len(outs) > 1:
        print(f"a scale profile: publish its runs together (dimbench publish {' '.join(map(str, outs))})")
    elif options.corpus is not None:
        print(
            f"corpus {options.corpus.name} ({options.corpus.digest}): your own data, "
            "no published run to compare with"
        )
    else:
        print(compare_with_published(outs[0], read_runs(outs[0])[0]["profile"]))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dimbench.report.publish import publish

    dest = publish([Path(d) for d in args.run_dirs], Path(args.to) if args.to else None)
    print(f"published {len(args.run_dirs)} run director{'y' if len(args.run_dirs) == 1 else 'ies'} to {dest}")
    return 0


def cmd_stability(args: argparse.Namespace) -> int:
    from dimbench.study.stability import describe, stability

    if args.runs < 2:
        raise DimbenchError(f"--runs must be at least 2, got {args.runs}")
    path, summary = stability(study_options(args), args.runs)
    print(describe(summary))
    print(f"summary: {path}")
    print("publish them: dimbench publish " + " ".join(r["directory"] for r in summary["runs"]))
    return 0


def cmd_corpus_calibrate(args: argparse.Namespace) -> int:
    from dimbench.corpus import calibrate
    from dimbench.corpus.cache import ensure_corpus
    from dimbench.database import db, provision

    provisioned = provision.provision(args.dsn, args.pgdata)
    corpus = ensure_corpus(args.spec, progress=not args.no_progress)
    with db.connect(provisioned.dsn) as conn:
        db.use_vectors(conn)
        result = calibrate.calibrate(conn, corpus, progress=not args.no_progress)
    calibrate.record(corpus, result)
    print(json.dumps(result, sort_keys=True))
    return 0


def cmd_corpus_load_benchmark(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from dimbench.corpus.cache import ensure_corpus
    from dimbench.corpus.load import benchmark_load
    from dimbench.database import db, provision, schema

    if args.dsn:
        raise DimbenchError("load-benchmark needs the embedded server (the server reads a local file)")
    provisioned = provision.provision(None, args.pgdata)
    admin = db.with_dbname(provisioned.dsn, "postgres")
    with db.connect(admin) as conn:
        conn.execute("drop database if exists dimbench_load_benchmark")
        conn.execute("create database dimbench_load_benchmark")
    dsn = db.with_dbname(provisioned.dsn, "dimbench_load_benchmark")
    corpus = ensure_corpus(args.spec, progress=False)
    try:
        with db.connect(dsn) as conn, tempfile.TemporaryDirectory() as tmp:
            schema.apply(conn)
            db.use_vectors(conn)
            result = benchmark_load(conn, corpus, Path(tmp))
    finally:
        with db.connect(admin) as conn:
            conn.execute("drop database if exists dimbench_load_benchmark")
    print(result.summary())
    return 0


def cmd_overhead(args: argparse.Namespace) -> int:
    from dimbench.database import provision
    from dimbench.study import overhead

    limit = overhead.TOLERANCE if args.limit is None else args.limit
    provisioned = provision.provision(args.dsn, args.pgdata)
    result = overhead.measure(provisioned.dsn, args.queries, limit)
    print(result.summary())
    return 0 if result.ok else EXIT_ERROR


def cmd_live(args: argparse.Namespace) -> int:
    from dimbench.evidence.live import judge_all
    from dimbench.files import read_json
    from dimbench.study import live

    options = live.LiveOptions(
        profile=args.profile,
        designs=[d for d in args.designs.split(",") if d] if args.designs else None,
        dsn=args.dsn,
        pgdata=args.pgdata,
        out=args.out,
        progress=not args.no_progress,
    )
    if args.check_loadgen:
        return live.check_loadgen(options)
    out = live.run_live(options)
    for verdict in judge_all(read_json(out / "live.json")):
        print(f"live: {verdict.summary()}")
    print(f"live measurements: {out / 'live.json'}")
    return 0


def cmd_corpus_generate(args: argparse.Namespace) -> int:
    from dimbench.corpus.cache import ensure_corpus

    corpus = ensure_corpus(args.spec, args.out, force=args.force, progress=not args.no_progress)
    print(corpus.directory)
    return 0


def cmd_corpus_load(args: argparse.Namespace) -> int:
    from dimbench.corpus.cache import ensure_corpus
    from dimbench.corpus.load import load_corpus
    from dimbench.database import db, provision

    if bool(args.spec) == bool(args.corpus):
        raise DimbenchError("corpus load needs exactly one of --spec FILE or --corpus DIR")
    if args.corpus:
        from pathlib import Path

        from dimbench.corpus.generate import verify
        from dimbench.corpus.reader import Corpus

        manifest = verify(Path(args.corpus))
        if not manifest.get("embedded", True):
            raise DimbenchError(f"{args.corpus} has no embeddings yet: run `dimbench corpus embed` first")
        corpus = Corpus(Path(args.corpus), manifest)
    else:
        corpus = ensure_corpus(args.spec, progress=not args.no_progress)
    provisioned = provision.provision(args.dsn, args.pgdata)
    with db.connect(provisioned.dsn) as conn:
        db.use_vectors(conn)
        report = load_corpus(
            conn, corpus, replace=args.replace, block_rows=args.block_rows, progress=not args.no_progress
        )
    print(report.summary())
    return 0


# --- parser --------------------------------------------------------------------------------------

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="dimbench",
        description="Benchmark 768- vs 1536-d embeddings for multi-tenant pgvector search under RLS.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True

    run = sub.add_parser("run", help="run the study (default profile: small)")
    run.add_argument("--profile", default="small", help=PROFILE_HELP)
    run.add_argument("--out", help="run directory (default: runs/<profile>/<run id>, or DIMBENCH_RUNS)")
    run.add_argument("--fresh", action="store_true", help="start a new run instead of resuming one")
    run.add_argument(
        "--corpus", help="study an imported corpus directory (`corpus import`) instead of the grid's"
    )
    run.add_argument(
        "--side-channel",
        choices=("decided", "all"),
        default="decided",
        help="tenant side channel for the chosen design and its tie set (default) or every design",
    )
    run.add_argument(
        "--live",
        choices=("decided", "all", "off"),
        default="decided",
        help="the grid's [live] stage for the chosen design, its tie set and shared (default), every design, "
        "or off",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_target_args(run)
    run.set_defaults(handler=cmd_run)

    stab = sub.add_parser("stability", help="repeat the study on fresh index builds; does the decision hold?")
    stab.add_argument("--profile", default="small", help=PROFILE_HELP)
    stab.add_argument("--runs", type=positive_int, default=3, help="how many runs (default 3)")
    stab.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_target_args(stab)
    stab.set_defaults(handler=cmd_stability)

    pub = sub.add_parser("publish", help="write finished runs to results/<profile>/ (the only way to)")
    pub.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="finished run directories (same grid, corpus)"
    )
    pub.add_argument("--to", help="destination (default: results/<profile> of the checkout)")
    pub.set_defaults(handler=cmd_publish)

    over = sub.add_parser("overhead", help="harness vs pgbench latency for one fixed query (limit: +10%%)")
    over.add_argument("--queries", type=positive_int, default=1000, help="requests per side (default 1000)")
    over.add_argument(
        "--limit", type=positive_float, help="largest harness/pgbench p50 ratio that passes (default 1.10)"
    )
    add_target_args(over)
    over.set_defaults(handler=cmd_overhead)

    live = sub.add_parser(
        "live", help="each design under the platform's writes (the grid's [live]), on a copy"
    )
    live.add_argument("--profile", default="small", help=PROFILE_HELP)
    live.add_argument("--designs", help="comma-separated designs (default: the grid's on the live build)")
    live.add_argument("--out", help="directory for live.json (default: runs/<profile>/live-<time>)")
    live.add_argument(
        "--check-loadgen",
        action="store_true",
        help="only compare the load generator with pgbench's own tps at 4 and 8 clients (limit 0.9)",
    )
    live.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_target_args(live)
    live.set_defaults(handler=cmd_live)

    corpus = sub.add_parser("corpus", help="generate or load a corpus")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", metavar="ACTION", parser_class=OneLineParser)
    corpus_sub.required = True
    generate = corpus_sub.add_parser("generate", help="generate (or reuse) the corpus of a spec")
    generate.add_argument("--spec", required=True, help=SPEC_HELP)
    generate.add_argument("--out", help="corpus directory (default: .dimbench/corpora/<name>-<digest>)")
    generate.add_argument("--force", action="store_true", help="regenerate even if cached")
    generate.add_argument("--no-progress", action="store_true")
    generate.set_defaults(handler=cmd_corpus_generate)
    load = corpus_sub.add_parser("load", help="generate if needed, then load into the database")
    load.add_argument("--spec", help=SPEC_HELP)
    load.add_argument("--corpus", help="or: a corpus directory (e.g. from `corpus import`)")
    load.add_argument("--replace", action="store_true", help="replace another corpus loaded before")
    load.add_argument(
        "--block-rows", type=positive_int, default=5000, help="chunks per transaction (default 5000)"
    )
    load.add_argument("--no-progress", action="store_true")
    add_target_args(load)
    load.set_defaults(handler=cmd_corpus_load)
    calib = corpus_sub.add_parser("calibrate", help="measure unfiltered hnsw recall on the corpus; record it")
    calib.add_argument("--spec", required=True, help=SPEC_HELP)
    calib.add_argument("--no-progress", action="store_true")
    add_target_args(calib)
    calib.set_defaults(handler=cmd_corpus_calibrate)
    bench_load = corpus_sub.add_parser("load-benchmark", help="load speed vs the server COPY FROM file")
    bench_load.add_argument("--spec", default="smoke", help=SPEC_HELP + " (default: smoke)")
    add_target_args(bench_load)
    bench_load.set_defaults(handler=cmd_corpus_load_benchmark)
    from dimbench.realdata.commands import register as register_real_data

    register_real_data(corpus_sub)

    db = sub.add_parser("db", help="start or stop the embedded PostgreSQL")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=OneLineParser)
    db_sub.required = True
    up = db_sub.add_parser("up", help="start (or reuse) the embedded server; print its DSN last")
    up.add_argument("--pgdata", help="data directory (or DIMBENCH_PGDATA)")
    up.set_defaults(handler=cmd_db_up)
    down = db_sub.add_parser("down", help="stop the embedded server")
    down.add_argument("--pgdata", help="data directory (or DIMBENCH_PGDATA)")
    down.set_defaults(handler=cmd_db_down)

    schema = sub.add_parser("schema", help="provision the harmonized schema")
    schema_sub = schema.add_subparsers(dest="schema_command", metavar="ACTION", parser_class=OneLineParser)
    schema_sub.required = True
    apply = schema_sub.add_parser("apply", help="apply schema/ in order (idempotent)")
    add_target_args(apply)
    apply.set_defaults(handler=cmd_schema_apply)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Command groups that live beside the code they drive (imported lazily, not at import time)."""
    from dimbench.report.commands import register as register_report
    from dimbench.study.sensitivity import register as register_sensitivity
    from dimbench.verify.runner import register as register_verify

    return [register_report, register_verify, register_sensitivity]


def main(argv: Sequence[str] | None = None) -> int:
    # psycopg logs a warning when a connection torn down by Ctrl-C or a failed request cannot roll back;
    # the user is told what happened in one line below, not in the library's words as well.
    logging.getLogger("psycopg").addHandler(logging.NullHandler())
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except DimbenchError as exc:
        print(f"dimbench: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except psycopg.Error as exc:
        # A server-side failure we did not anticipate: still one line, with the server's words.
        message = (getattr(exc.diag, "message_primary", None) or str(exc)).splitlines()[0]
        print(f"dimbench: error: database: {message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("dimbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
