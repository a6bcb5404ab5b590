"""The files dimbench writes: atomically, marked as its own, and removed only where it finds its mark.

Every directory dimbench creates to hold its output (a run directory, a published directory, a corpus,
plots/) gets a marker file naming what it is. Nothing is ever deleted or replaced wholesale unless that
marker is there: a directory a user made, or one of another kind, is refused in one line and left as it
was. Temporary directories are marked too, so a later start can clear what a killed process left.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dimbench.errors import DimbenchError

MARKER = ".dimbench-owned"
KINDS = ("run", "published", "corpus", "plots", "staging")


def mark(directory: Path, kind: str) -> None:
    """Record that dimbench created `directory` to hold a `kind`."""
    assert kind in KINDS, kind
    write_atomic(directory / MARKER, json.dumps({"created_by": "dimbench", "kind": kind}) + "\n")


def kind_of(directory: Path) -> str | None:
    """The kind dimbench marked `directory` with, or None (not dimbench's, or unreadable)."""
    try:
        data = json.loads((directory / MARKER).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("created_by") != "dimbench":
        return None
    kind = data.get("kind")
    return kind if kind in KINDS else None


def owned(directory: Path, *kinds: str) -> bool:
    return directory.is_dir() and not directory.is_symlink() and kind_of(directory) in kinds


def is_empty_dir(directory: Path) -> bool:
    return directory.is_dir() and not directory.is_symlink() and not any(directory.iterdir())


def refuse_unless_owned(path: Path, kinds: tuple[str, ...], what: str) -> None:
    """Raise unless `path` is absent, an empty directory, or a directory dimbench marked as one of `kinds`."""
    if not path.exists() and not path.is_symlink():
        return
    if is_empty_dir(path) or owned(path, *kinds):
        return
    if not path.is_dir() or path.is_symlink():
        raise DimbenchError(f"{path} is not a directory: choose another {what}")
    raise DimbenchError(
        f"{path} was not created by dimbench as a {' or '.join(kinds)} directory (no {MARKER} marker): "
        f"nothing was changed; choose another {what}, or move it away yourself"
    )


def remove_owned(path: Path, *kinds: str) -> None:
    """Delete a directory dimbench marked as one of `kinds` (an absent or empty one is fine)."""
    refuse_unless_owned(path, kinds, "destination")
    if path.is_dir():
        shutil.rmtree(path)


def marked_temporary(parent: Path, name: str) -> Path:
    """A new, marked temporary directory `.<name>.tmp-<pid>-…` in `parent`, removed by its creator or,
    once that process is gone, by `clear_temporaries`."""
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.tmp-{os.getpid()}-"))
    mark(tmp, "staging")
    return tmp


def clear_temporaries(parent: Path, name: str) -> list[Path]:
    """What `marked_temporary(parent, name)` and `swap_in` left behind in processes that are gone."""
    stem = re.escape(name)
    return clear_stale_temporaries(
        parent, rf"\.{stem}\.(tmp|old)-(?P<pid>\d+)(-.*)?", kinds=("staging", *KINDS)
    )


def clear_stale_temporaries(parent: Path, pattern: str, kinds: tuple[str, ...] = ("staging",)) -> list[Path]:
    """Remove marked directories in `parent` whose names match `pattern` (a regex with an optional `pid`
    group) and whose process is gone: the temporaries a killed process left behind."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    regex = re.compile(pattern)
    for child in parent.iterdir():
        match = regex.fullmatch(child.name)
        if not match or not owned(child, *kinds):
            continue
        pid = match.groupdict().get("pid")
        if pid is not None and _alive(int(pid)):
            continue
        shutil.rmtree(child, ignore_errors=True)
        removed.append(child)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def swap_in(staging: Path, dest: Path, kinds: tuple[str, ...]) -> None:
    """Replace `dest` (absent, empty, or marked as one of `kinds`) by the complete directory `staging`."""
    refuse_unless_owned(dest, kinds, "destination")
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        dest.rename(old)
        staging.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(dest)


# --- atomic writes -------------------------------------------------------------------------------


def ensure_writable(directory: Path, what: str = "results") -> None:
    """Fail before any work if `what` cannot be written there (and say where)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=directory, prefix=".write-probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise DimbenchError(f"cannot write {what} to {directory}: {exc.strerror or exc}") from exc


def check_writable(directory: Path, what: str = "results") -> None:
    """Fail before any work if `directory` could not be created and written, creating nothing: its
    nearest existing ancestor must be a directory we may write into."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DimbenchError(f"cannot write {what} to {directory}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DimbenchError(f"cannot write {what} to {directory}: {existing} is not writable")


def write_atomic(path: Path, data: str | bytes) -> None:
    mode = "wb" if isinstance(data, bytes) else "w"
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, mode) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise DimbenchError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DimbenchError(f"cannot read {path}: {exc}") from exc
