"""Traffic beside the migration: pgbench streams (study/loadgen.py's command line and log parser) that
run in the background, one-second segment after segment, until stopped.

A migration breaks requests for good (0005 renames the legacy column), and pgbench aborts a client at
its first error: a single long pgbench run would stop offering traffic at the first break. So a stream
runs pgbench for one second at a time, open loop (`-R`): each segment's transactions come from its
per-transaction log (start = completion − latency, which in open loop counts from the scheduled
start, so a request stuck behind a lock carries its whole wait); each aborted client is one failed
request, stamped when pgbench printed it (stderr is read as it is written); what an aborted client
was still scheduled to send in that second is `unsent`, and the stream waits out the second before the
next segment, so the offered rate stays the offered rate. Every request offered is counted once.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from dimbench.errors import DimbenchError
from dimbench.study import loadgen

SEGMENT_S = 1  # pgbench's -T takes whole seconds


@dataclass(frozen=True)
class Sent:
    """One offered request: when it started (epoch s), how long it took, and how it ended."""

    start: float
    latency_ms: float | None  # None: not completed (failed, skipped or unsent)
    outcome: str  # ok | failed | skipped | serialization | deadlock | unsent
    error: str | None = None  # the server's message for a failed request


def error_line(text: str) -> str:
    """A failure as one short, stable line (no literal of the request in it)."""
    text = re.sub(r"^(ERROR|FATAL):\s+", "", text.strip())
    return re.sub(r"\s+", " ", text)[:160]


@dataclass
class Stream:
    """One kind of request (`scripts`, equal weights) at `rate`/s over `clients` connections."""

    name: str
    dsn: str
    scripts: Sequence[str]
    rate: float
    clients: int
    settings: Mapping[str, str] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    failure: str | None = None  # pgbench itself failed (not a request): the measurement is void
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Stream:
        self._thread = threading.Thread(target=self._run, name=f"traffic-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.failure:
            raise DimbenchError(f"the {self.name} traffic could not run: {self.failure}")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._segment()
            except (DimbenchError, OSError, subprocess.SubprocessError) as exc:
                self.failure = str(exc)
                return

    def _segment(self) -> None:
        load = loadgen.Load(self.clients, SEGMENT_S, self.rate, None, dict(self.settings))
        args, env = loadgen.pgbench_args(self.dsn, load)
        # extended, not prepared: pgbench prepares every statement when a client connects and, when that
        # fails (a renamed column), reports only 'prepared statement "P_0" does not exist' afterwards
        args[args.index("-M") + 1] = "extended"
        dbname = str(psycopg.conninfo.conninfo_to_dict(self.dsn).get("dbname") or "postgres")
        aborts: list[tuple[float, str]] = []
        with tempfile.TemporaryDirectory(prefix="dimbench-migration-") as tmp:
            for i, text in enumerate(self.scripts):
                (Path(tmp) / f"r{i}.sql").write_text(text)
                args += ["-f", f"r{i}.sql@1"]
            began = time.time()
            with subprocess.Popen(
                [*args, dbname],
                cwd=tmp,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            ) as proc:
                assert proc.stderr is not None
                last = ""
                for line in proc.stderr:  # as pgbench writes it: an abort is stamped when it happens
                    if m := loadgen.ABORTED.search(line):
                        aborts.append((time.time(), error_line(m.group(2))))
                    elif line.strip():
                        last = line.strip()
                code = proc.wait(timeout=120)
            if code not in (0, 2) or (code == 2 and not aborts):
                raise DimbenchError(f"pgbench failed: {last or 'exit ' + str(code)}")
            lines = [ln for log in sorted(Path(tmp).glob("txn*")) for ln in log.read_text().splitlines()]
        for t in loadgen.parse_log(lines, throttled=True):
            done = t.done_us / 1e6
            start = done - t.latency_ms / 1000 if t.latency_ms is not None else done
            self.sent.append(Sent(start, t.latency_ms, t.outcome))
        self.sent += [Sent(at, None, "failed", error) for at, error in aborts]
        if aborts:
            offered = round(self.rate * SEGMENT_S)
            unsent = max(0, offered - len(lines) - len(aborts))
            self.sent += [Sent(aborts[-1][0], None, "unsent")] * unsent
            # the second is still the stream's: no new segment before it is over
            self._stop.wait(max(0.0, began + SEGMENT_S - time.time()))


class Traffic:
    """The streams running at once, started and stopped together or one by one."""

    def __init__(self) -> None:
        self.streams: dict[str, Stream] = {}

    def start(self, stream: Stream) -> None:
        self.streams[stream.name] = stream.start()

    def stop(self, *names: str) -> None:
        for name in names or tuple(self.streams):
            self.streams[name].stop()

    def stop_quietly(self) -> None:
        """On the way out after an error: stop what runs, without raising a second error."""
        for stream in self.streams.values():
            stream._stop.set()
        for stream in self.streams.values():
            if stream._thread is not None:
                stream._thread.join()
