"""Shared setup for the suites: one embedded server in dimbench's state directory (asv/pgdata), the smoke
corpus loaded into one database per index kind (so an hnsw and an ivfflat index never compete for the
planner's choice).

asv installs each commit's wheel in its own environment and runs these suites from outside the checkout:
everything is found through the installed package (its shipped specs and migrations, paths.state_dir()),
never through the working tree. Databases are named by a digest of the migrations, so commits with
different schemas never share one.

asv runs every benchmark (and setup_cache) in a process of its own and has no hook after the last one,
so each of those processes stops the embedded server it started (`Server`): nothing a suite started
outlives `asv run`. DIMBENCH_ASV_DSN names a server of the user's instead; it is never started or
stopped. DIMBENCH_ASV_CORPUS picks another shipped spec than smoke (the tests use tiny).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np

INDEXES = ("hnsw", "ivfflat")
COLUMNS = ("vector768", "vector1536")
ACCESS = ("service", "rls")
BUILD_PARAMS = {"hnsw": {"m": 16, "ef_construction": 64}, "ivfflat": {"lists": 20}}
QUERY_PARAMS = {"hnsw": {"ef_search": 40}, "ivfflat": {"probes": 4}}


def pgdata():
    from dimbench.paths import state_dir

    return state_dir() / "asv" / "pgdata"


class Server:
    """The server a benchmark process uses: the user's (DIMBENCH_ASV_DSN), or the embedded one in
    asv/pgdata, started if needed and stopped again by `release` only if this process started it."""

    def __init__(self) -> None:
        from dimbench.database import db

        self.started = False
        self.dsn = os.environ.get("DIMBENCH_ASV_DSN") or ""
        if self.dsn:
            return
        directory = pgdata()
        directory.parent.mkdir(parents=True, exist_ok=True)
        self.embedded = db.EmbeddedServer(directory)
        self.started = not self.embedded.running()
        self.dsn = self.embedded.start()

    def release(self) -> None:
        if self.started:
            self.embedded.stop()
            self.started = False


def corpus_name() -> str:
    return os.environ.get("DIMBENCH_ASV_CORPUS", "smoke")


def schema_digest() -> str:
    import hashlib

    from dimbench.paths import schema_dir

    digest = hashlib.sha256()
    for path in sorted(schema_dir().glob("*.sql")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:10]


def smoke_corpus():
    from dimbench.corpus.cache import ensure_corpus
    from dimbench.paths import datasets_dir

    return ensure_corpus(datasets_dir() / f"{corpus_name()}.toml", progress=False, log=lambda *_: None)


def prepare(index: str, admin: str) -> dict[str, Any]:
    """Database asv_<index>_<corpus>_<schema digest>, created or reused: schema, corpus, both indexes."""
    from dimbench.corpus.load import load_corpus
    from dimbench.database import db, schema
    from dimbench.study import index as indexes
    from dimbench.study.grid import Build

    name = f"asv_{index}_{corpus_name()}_{schema_digest()}"
    db.ensure_database(admin, name)
    dsn = db.with_dbname(admin, name)
    corpus = smoke_corpus()
    builds = {}
    with db.connect(dsn) as conn:
        schema.apply(conn)
        db.use_vectors(conn)
        load_corpus(conn, corpus, progress=False)
        indexes.drop_study_indexes(conn)
        for column in COLUMNS:
            built = indexes.build(conn, Build(column, index, BUILD_PARAMS[index]))
            builds[column] = built.seconds
    return {"dsn": dsn, "build_seconds": builds}


def queries(limit: int = 40) -> list:
    from dimbench.study.inputs import study_queries

    everything = [q for q in study_queries(smoke_corpus()) if q.scope == "all"]
    step = max(1, len(everything) // limit)
    return everything[::step][:limit]


def session(dsn: str, index: str, column: str):
    from dimbench.database import db
    from dimbench.study import index as indexes
    from dimbench.study.grid import Build

    conn = db.use_vectors(db.connect(dsn))
    build = Build(column, index, BUILD_PARAMS[index])
    indexes.query_settings(conn, build, QUERY_PARAMS[index], "relaxed_order")
    return conn, build


def recall(conn, build, access: str, qs: list) -> float:
    from dimbench.study.configs import Arm
    from dimbench.study.measure import run_cell

    return float(np.mean(run_cell(conn, Arm(access, build, 10), qs, warmup=2).recalls))


def one_request(conn, build, access: str, q) -> None:
    from dimbench.study import arms
    from dimbench.study.configs import Arm

    arms.ask(conn, Arm(access, build, 10), arms.query_vector(q.vector_1536, build), q.user, q.filter_ids)


CANARY = uuid.uuid5(uuid.NAMESPACE_URL, "dimbench/asv-canary")
