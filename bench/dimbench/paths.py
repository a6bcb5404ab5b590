"""Where dimbench's files live (resolved on call, no work at import).

Migrations, corpus specs and grids are package data (dimbench/resources/), found with importlib.resources,
so a wheel installed anywhere has them; the checkout's schema/, datasets/ and bench/grids/ are symlinks to
the same files. State (the embedded server's data, corpus caches) goes to the checkout's .dimbench/ when
running from a checkout, else to a per-user directory; DIMBENCH_HOME overrides both.
"""

from __future__ import annotations

import os
import re
from importlib.resources import files
from pathlib import Path

from dimbench.errors import DimbenchError


def _resources() -> Path:
    # A regular package installed on a file system (wheel or editable): files() is a real directory.
    return Path(str(files("dimbench") / "resources"))


def schema_dir() -> Path:
    return _resources() / "schema"


def datasets_dir() -> Path:
    return _resources() / "datasets"


def grids_dir() -> Path:
    return _resources() / "grids"


def checkout_root() -> Path | None:
    """The source checkout the package runs from (editable install or PYTHONPATH), or None for a wheel."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "bench" / "dimbench").is_dir() else None


def repo_root() -> Path:
    """The checkout, or for an installed wheel the directory two levels above the package (which holds
    no checkout files: callers must cope with missing results/ and .git)."""
    return checkout_root() or Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    """The embedded server's data directory and corpus caches: DIMBENCH_HOME, else the checkout's
    .dimbench/ (gitignored), else $XDG_DATA_HOME/dimbench (~/.local/share/dimbench)."""
    if os.environ.get("DIMBENCH_HOME"):
        return Path(os.environ["DIMBENCH_HOME"]).expanduser()
    root = checkout_root()
    if root is not None:
        return root / ".dimbench"
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "dimbench"


def runs_dir() -> Path:
    """Where a user's own runs go: DIMBENCH_RUNS, else ./runs in the current directory.

    A run is the user's; results/<profile>/ in the checkout holds published runs only (dimbench publish).
    """
    return Path(os.environ.get("DIMBENCH_RUNS") or Path.cwd() / "runs")


def results_root() -> Path:
    """The checkout's results/: published runs only, written by `dimbench publish` alone."""
    return repo_root() / "results"


def published_dir(profile: str) -> Path:
    """The published results of a profile (in the checkout; may not exist for an installed wheel)."""
    return results_root() / plain_name(profile, "profile")


PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def plain_name(value: object, what: str, where: str = "") -> str:
    """A name that becomes one path component (a profile, a run id, a corpus name): letters, digits,
    `_`, `-` and `.`, starting with a letter or digit, no `..`, at most 100 characters."""
    if not isinstance(value, str) or not PLAIN_NAME.fullmatch(value) or ".." in value:
        prefix = f"{where}: " if where else ""
        raise DimbenchError(
            f"{prefix}{what} must be a plain name (letters, digits, _, - and ., no path separators or "
            f"'..'), got {value!r}"
        )
    return value


def inside(path: Path, root: Path) -> bool:
    """Is `path` (resolved, whether or not it exists) `root` or below it?"""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def spec_path(spec: str | Path) -> Path:
    """A corpus spec given on the command line: an existing file, else the name (or datasets/NAME.toml)
    of a spec shipped with dimbench."""
    given = Path(spec).expanduser()
    if given.is_file():
        return given
    shipped = datasets_dir() / f"{given.stem}.toml"
    by_name = given.parent in (Path("."), Path("datasets")) and given.suffix in ("", ".toml")
    if by_name and shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in datasets_dir().glob("*.toml")))
    raise DimbenchError(f"no corpus spec at {spec} (give a file, or a shipped spec: {names})")
