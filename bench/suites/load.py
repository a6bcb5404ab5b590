"""Load throughput of the smoke corpus (binary COPY), chunks per second."""

from __future__ import annotations

from . import common


class Load:
    timeout = 600
    number = 1
    repeat = 1

    def setup(self) -> None:
        from dimbench.database import db, schema

        self.server = common.Server()
        admin = self.server.dsn
        with db.connect(admin) as conn:
            conn.execute("drop database if exists asv_load")
            conn.execute("create database asv_load")
        self.dsn = db.with_dbname(admin, "asv_load")
        with db.connect(self.dsn) as conn:
            schema.apply(conn)
        self.corpus = common.smoke_corpus()

    def track_load_chunks_per_second(self) -> float:
        from dimbench.corpus.load import load_corpus
        from dimbench.database import db

        with db.connect(self.dsn) as conn:
            db.use_vectors(conn)
            report = load_corpus(conn, self.corpus, progress=False)
        return report.rows["document_chunks"] / report.seconds

    track_load_chunks_per_second.unit = "chunks/s"

    def teardown(self) -> None:
        self.server.release()
