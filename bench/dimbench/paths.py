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


def runs_dir() -> Path:
    """Where a user's own runs go: DIMBENCH_RUNS, else ./runs in the current directory.

    A run is the user's; results/<profile>/ in the checkout holds published runs only (dimbench publish).
    """
    import os

    return Path(os.environ.get("DIMBENCH_RUNS") or Path.cwd() / "runs")


def published_dir(profile: str) -> Path:
    """The published results of a profile (in the checkout; may not exist for an installed wheel)."""
    return repo_root() / "results" / profile
