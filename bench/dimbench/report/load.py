"""Read a results directory, strictly: anything missing or malformed is one clear line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dimbench.errors import DimbenchError

REQUIRED = (
    "dim",
    "column_type",
    "index",
    "build_params",
    "query_params",
    "access",
    "iterative_scan",
    "scope",
    "bucket",
    "k",
    "n_queries",
    "recall_mean",
    "latency_ms",
    "qps",
)


@dataclass
class Results:
    directory: Path
    run: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def profile(self) -> str:
        return str(self.run.get("profile", self.directory.name))

    @property
    def caption(self) -> str:
        corpus = self.run.get("corpus") or {}
        counts = corpus.get("counts") or {}
        return (
            f"profile {self.profile} · corpus {corpus.get('name', '?')} "
            f"({counts.get('chunks', '?')} chunks, {counts.get('workspaces', '?')} workspaces) · "
            f"PostgreSQL {self.run.get('server', {}).get('postgresql', '?')}, "
            f"pgvector {self.run.get('server', {}).get('pgvector', '?')}"
        )

    def builds(self) -> dict[str, dict[str, Any]]:
        return {b["build_key"]: b for b in self.run.get("builds", [])}


def read_results(directory: Path) -> Results:
    directory = Path(directory)
    if not directory.is_dir():
        raise DimbenchError(f"no results directory at {directory} (run `dimbench run` first)")
    run_path, rows_path = directory / "run.json", directory / "measurements.jsonl"
    for path in (run_path, rows_path):
        if not path.is_file():
            raise DimbenchError(f"{path} is missing: not a dimbench results directory")
    try:
        run = json.loads(run_path.read_text())
    except json.JSONDecodeError as exc:
        raise DimbenchError(f"{run_path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(run, dict):
        raise DimbenchError(f"{run_path}: expected a JSON object")
    rows = []
    for number, line in enumerate(rows_path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DimbenchError(f"{rows_path}:{number}: not valid JSON ({exc.msg})") from exc
        missing = [key for key in REQUIRED if not isinstance(row, dict) or key not in row]
        if missing:
            raise DimbenchError(f"{rows_path}:{number}: missing field {missing[0]!r}")
        rows.append(row)
    if not rows:
        raise DimbenchError(f"{rows_path}: no measurements")
    return Results(directory, run, rows)
