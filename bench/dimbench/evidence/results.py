"""Read a results directory, strictly: anything missing or malformed is one clear line naming file and line.

Extra keys are tolerated (the runner may record more than the report reads); `null` means "not
measured" and is kept as None, never turned into 0.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dimbench.errors import DimbenchError
from dimbench.vocabulary import (
    ACCESS_ARMS,
    BUCKETS,
    COLUMN_TYPES,
    DESIGNS,
    INDEX_KINDS,
    ITERATIVE,
    SCOPES,
    STAGES,
)

# field -> allowed values (None: any value of the right type, checked in TYPES): the vocabulary's.
ENUMS: dict[str, tuple[Any, ...]] = {
    "stage": STAGES,
    "dim": tuple(sorted({dim for _, dim in COLUMN_TYPES.values()})),
    "column_type": tuple(COLUMN_TYPES),
    "index": INDEX_KINDS,
    "access": ACCESS_ARMS,
    "iterative_scan": tuple(ITERATIVE["hnsw"]),
    "scope": SCOPES,
    "bucket": BUCKETS,
}
# absent in results older than designs
OPTIONAL_ENUMS: dict[str, tuple[Any, ...]] = {"design": tuple(DESIGNS)}
NUMBER = (int, float)
# field -> accepted JSON types; None inside the tuple means the field may be null.
TYPES: dict[str, tuple[Any, ...]] = {
    "run_id": (str,),
    "recall_ci95": (list, type(None)),
    "build_params": (dict,),
    "query_params": (dict,),
    "k": (int,),
    "n_queries": (int,),
    "recall_mean": (*NUMBER, type(None)),
    "latency_ms": (dict, type(None)),
    "qps": (dict, type(None)),
}
REQUIRED = (*ENUMS, *TYPES)
# run.json: a key that is present has this type (null is allowed where None is listed).
OBJECT = (dict, type(None))
RUN_TYPES: dict[str, tuple[Any, ...]] = {
    "profile": (str,),
    "identity": OBJECT,
    "corpus": OBJECT,
    "server": OBJECT,
    "machine": OBJECT,
    "packages": OBJECT,
    "phases": OBJECT,
    "confirmation": OBJECT,
    "designs": (list, type(None)),
    "settled": (list, type(None)),
    "side_channel": (list, type(None)),
    "planned_cells": (int, type(None)),
    "measured_cells": (int, type(None)),
    "finished_at": (str, type(None)),
}
# Measured values and the ranges they can take: recall is a share, latencies and rates are positive.
SHARES = ("recall_mean", "ndcg10", "short_share")


@dataclass
class Results:
    directory: Path
    run: dict[str, Any]  # the first run (its rows lead the plots and the decision)
    rows: list[dict[str, Any]]
    runs: list[dict[str, Any]] = field(default_factory=list)  # every run whose rows the directory holds
    live: dict[str, Any] | None = None  # the directory's live.json (the live stage), None: not measured

    def __post_init__(self) -> None:
        if not self.runs:
            self.runs = [self.run]

    @property
    def profile(self) -> str:
        return str(self.run.get("profile", self.directory.name))

    @property
    def caption(self) -> str:
        corpus = self.run.get("corpus") or {}
        counts = corpus.get("counts") or {}
        server = self.run.get("server") or {}
        return (
            f"profile {self.profile} · corpus {corpus.get('name', '?')} "
            f"({counts.get('chunks', '?')} chunks, {counts.get('workspaces', '?')} workspaces) · "
            f"PostgreSQL {server.get('postgresql', '?')}, pgvector {server.get('pgvector', '?')} · "
            f"run {self.run.get('run_id', '?')}"
        )

    @property
    def side_channel_run(self) -> dict[str, Any]:
        """The run whose side channel measured the most designs (the first among equals): by default a run
        measures its decision's designs beside shared, and a run with `--side-channel all` every one."""
        return max(self.runs, key=lambda r: len({e.get("design") for e in r.get("side_channel") or []}))

    def builds(self, run_id: str | None = None) -> dict[str, dict[str, Any]]:
        """Index builds of one run (default: the first) by build key."""
        run = next((r for r in self.runs if run_id is not None and r.get("run_id") == run_id), self.run)
        return {b["build_key"]: b for b in run.get("builds") or []}

    def designs(self, run_id: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
        """Designs installed by one run (default: the first) by (design, build key): sizes and details."""
        run = next((r for r in self.runs if run_id is not None and r.get("run_id") == run_id), self.run)
        return {(d["design"], d["build_key"]): d for d in run.get("designs") or []}

    def of_run(self, run_id: str) -> Results:
        """The same directory narrowed to one run."""
        run = next(r for r in self.runs if r.get("run_id") == run_id)
        rows = [r for r in self.rows if r.get("run_id") == run_id]
        return Results(self.directory, run, rows, [run], self.live)


def read_results(directory: Path) -> Results:
    directory = Path(directory)
    if not directory.is_dir():
        raise DimbenchError(f"no results directory at {directory} (run `dimbench run` first)")
    run_path, rows_path = directory / "run.json", directory / "measurements.jsonl"
    for path in (run_path, rows_path):
        if not path.is_file():
            raise DimbenchError(f"{path} is missing: not a dimbench results directory")
    runs = read_run(run_path)
    rows = read_rows(rows_path)
    known = {r.get("run_id") for r in runs}
    stray = next((r.get("run_id") for r in rows if r.get("run_id") not in known), None)
    if stray is not None or not rows:
        raise DimbenchError(f"{rows_path}: rows of run {stray!r}, which {run_path} does not describe")
    return Results(directory, runs[0], rows, runs, read_live(directory / "live.json"))


def read_live(path: Path) -> dict[str, Any] | None:
    """The live stage's measurements (None when the run has none); a malformed file is one line."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DimbenchError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("designs"), dict):
        raise DimbenchError(f"{path}: not a live.json (no 'designs' table)")
    return data


def read_run(path: Path) -> list[dict[str, Any]]:
    """The runs of a run.json (format 2: {"format": 2, "profile": …, "runs": [run, …]})."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DimbenchError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DimbenchError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(data, dict):
        raise DimbenchError(f"{path}: expected a JSON object, found {type(data).__name__}")
    runs = data.get("runs")
    if data.get("format") != 2 or not isinstance(runs, list) or not runs:
        raise DimbenchError(f"{path}: not a run.json of format 2 with a non-empty 'runs' list")
    for n, run in enumerate(runs):
        if not isinstance(run, dict) or not isinstance(run.get("run_id"), str):
            raise DimbenchError(f"{path}: runs[{n}] has no 'run_id'")
        for key, types in RUN_TYPES.items():
            if key in run and (isinstance(run[key], bool) or not isinstance(run[key], types)):
                raise DimbenchError(f"{path}: runs[{n}].{key} has the wrong type ({type(run[key]).__name__})")
        for part in ("grid", "corpus"):
            if not isinstance((run.get("identity") or {}).get(part, {}), dict):
                raise DimbenchError(f"{path}: runs[{n}].identity.{part} must be an object")
        builds = run.get("builds", [])
        if not isinstance(builds, list):
            raise DimbenchError(f"{path}: runs[{n}].builds must be a list")
        for i, build in enumerate(builds):
            if not isinstance(build, dict) or not isinstance(build.get("build_key"), str):
                raise DimbenchError(f"{path}: runs[{n}].builds[{i}] has no 'build_key'")
    return runs


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DimbenchError(f"{path}: cannot read ({exc})") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DimbenchError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
        problem = check_row(row)
        if problem:
            raise DimbenchError(f"{path}:{number}: {problem}")
        rows.append(row)
    if not rows:
        raise DimbenchError(f"{path}: no measurements")
    return rows


def check_row(row: Any) -> str | None:
    """What is wrong with one measurement line, or None."""
    if not isinstance(row, dict):
        return f"expected a JSON object, found {type(row).__name__}"
    for key in REQUIRED:
        if key not in row:
            return f"missing field {key!r}"
    for key, allowed in ENUMS.items():
        if row[key] not in allowed:
            return f"{key} = {row[key]!r} is not one of {', '.join(map(str, allowed))}"
    for key, allowed in OPTIONAL_ENUMS.items():
        if key in row and row[key] not in allowed:
            return f"{key} = {row[key]!r} is not one of {', '.join(map(str, allowed))}"
    for key, types in TYPES.items():
        # bool is an int in Python but never a valid count or measurement here.
        if isinstance(row[key], bool) or not isinstance(row[key], types):
            return f"{key} has the wrong type ({type(row[key]).__name__})"
    if row["k"] < 1 or row["n_queries"] < 0:
        return "k must be ≥ 1 and n_queries ≥ 0"
    for key in SHARES:
        value = row.get(key)
        if value is not None and not _number_in(value, 0.0, 1.0):
            return f"{key} = {value!r} is not a share in [0, 1]"
    interval = row["recall_ci95"]
    if interval is not None and (len(interval) != 2 or not all(_number_in(v, 0.0, 1.0) for v in interval)):
        return "recall_ci95 must be two shares in [0, 1] (or null)"
    latency = row["latency_ms"] or {}
    if any(v is not None and not _number_in(v, 0.0, math.inf) for v in latency.values()):
        return "latency_ms values must be numbers ≥ 0 or null"
    qps = row["qps"] or {}
    if any(not str(k).isdigit() for k in qps):
        return 'qps keys must be client counts ("1", "2", "4", …)'
    if any(v is not None and not _number_in(v, 0.0, math.inf) for v in qps.values()):
        return "qps values must be numbers ≥ 0 or null"
    return None


def _number_in(value: Any, low: float, high: float) -> bool:
    """A finite JSON number (not a bool) in [low, high]."""
    return (
        isinstance(value, NUMBER)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )
