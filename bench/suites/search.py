"""Recall (track_) and latency (time_) of hnsw and ivfflat at 768 and 1536, with and without RLS."""

from __future__ import annotations

import timeit

from . import common


class Search:
    params = (common.INDEXES, common.COLUMNS, common.ACCESS)
    param_names = ("index", "column", "access")
    timer = timeit.default_timer  # the work happens in the server process: wall clock, not CPU time
    timeout = 600

    def setup_cache(self) -> dict:
        server = common.Server()
        try:
            return {index: common.prepare(index, server.dsn) for index in common.INDEXES}
        finally:
            server.release()

    def setup(self, cache: dict, index: str, column: str, access: str) -> None:
        self.server = common.Server()
        self.conn, self.build = common.session(cache[index]["dsn"], index, column)
        self.queries = common.queries()

    def teardown(self, cache: dict, index: str, column: str, access: str) -> None:
        self.conn.close()
        self.server.release()

    def track_recall(self, cache: dict, index: str, column: str, access: str) -> float:
        return common.recall(self.conn, self.build, access, self.queries)

    track_recall.unit = "recall@10"

    def time_request(self, cache: dict, index: str, column: str, access: str) -> None:
        common.one_request(self.conn, self.build, access, self.queries[0])


class Build:
    params = (common.INDEXES, common.COLUMNS)
    param_names = ("index", "column")
    timeout = 600

    def setup_cache(self) -> dict:
        server = common.Server()
        try:
            return {index: common.prepare(index, server.dsn) for index in common.INDEXES}
        finally:
            server.release()

    def track_build_seconds(self, cache: dict, index: str, column: str) -> float:
        return cache[index]["build_seconds"][column]

    track_build_seconds.unit = "seconds"
