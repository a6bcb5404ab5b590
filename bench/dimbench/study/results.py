"""Results files: written atomically (temp file + rename), so a crash never leaves half a file.

measurements.jsonl holds one line per cell, sorted by cell key; a rerun reads it to skip cells that
are already measured. Raw per-query data (ids, latencies) goes to raw/ (gitignored) for re-analysis;
derived metrics are never written back into raw files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dimbench.errors import DimbenchError
from dimbench.files import write_atomic
from dimbench.vocabulary import cell_key


class MeasurementStore:
    """The cells measured so far, keyed by cell; saved whole after each build group."""

    def __init__(self, path: Path, fresh: bool = False) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        if path.exists() and not fresh:
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    self.rows[cell_key(row)] = row
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise DimbenchError(
                        f"{path}:{number}: not a measurement line ({exc}); move the file away or use --fresh"
                    ) from exc

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def add(self, row: dict[str, Any]) -> None:
        self.rows[cell_key(row)] = row

    def save(self) -> None:
        lines = [json.dumps(self.rows[key], sort_keys=True) for key in sorted(self.rows)]
        write_atomic(self.path, "".join(line + "\n" for line in lines))


def save_raw(directory: Path, name: str, arrays: dict[str, np.ndarray]) -> None:
    """Per-query raw data for one build (npz), written atomically."""
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_atomic(directory / f"{name}.npz", buffer.getvalue())
