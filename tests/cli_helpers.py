"""Run the real `dimbench` command in a subprocess, as a user would."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path


def ctrl_c_default() -> None:
    """In the child before exec (Popen's preexec_fn): SIGINT back to its default. A shell without job
    control starts background commands with SIGINT ignored, and Python then never turns it into
    KeyboardInterrupt (the command would carry on and exit 0)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    # The user's own DIMBENCH_* settings must not leak into what a test asks for.
    base = {k: v for k, v in os.environ.items() if not k.startswith("DIMBENCH_")}
    full_env = {**base, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "dimbench.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """A user error: non-zero exit, exactly one line on stderr, no traceback, naming the problem."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def snapshot(root: Path) -> dict[str, str]:
    """Every file and directory under root (itself included), with each file's sha256."""
    out = {".": "dir" if root.is_dir() else hashlib.sha256(root.read_bytes()).hexdigest()}
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            rel = str(path.relative_to(root))
            out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out
