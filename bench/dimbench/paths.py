"""Where the project's files live, resolved from the package location (no work at import)."""

from pathlib import Path


def repo_root() -> Path:
    """The checkout that holds schema/, datasets/ and bench/ (the package is installed editable)."""
    return Path(__file__).resolve().parents[2]


def schema_dir() -> Path:
    return repo_root() / "schema"


def datasets_dir() -> Path:
    return repo_root() / "datasets"


def grids_dir() -> Path:
    return repo_root() / "bench" / "grids"


def state_dir() -> Path:
    """Gitignored local state: the embedded server's data directory, corpus caches."""
    return repo_root() / ".dimbench"
