"""The embedding columns of a corpus, each read from its own rows.

`1536` and `ada` are always the corpus's own files. `768` is its own file when the corpus holds 768-d
embeddings (imported, or embedded by a model of its own); otherwise it is *derived*: the 1536 column
truncated and renormalized, which is only the same geometry as a model's 768 when that model was trained
for it (text-embedding-3-*). Ground truth, statistics and query vectors of a column all come from here,
so exact top-k for a column is always that column's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dimbench.corpus import embeddings
from dimbench.corpus.arrays import RowReader
from dimbench.errors import DimbenchError

COLUMNS = ("1536", "768", "ada")
FILES = {"1536": "emb_1536.npy", "768": "emb_768.npy", "ada": "emb_ada.npy"}
WIDTHS = {"1536": 1536, "768": 768, "ada": 1536}
QUERY_FILES = {name: f"ask_{file}" for name, file in FILES.items()}  # query vectors before ground truth


def own(directory: Path, name: str) -> bool:
    return (Path(directory) / FILES[name]).exists()


def held(directory: Path) -> list[str]:
    """The columns this corpus can search: its own files, and 768 derived wherever 1536 exists."""
    found = [name for name in COLUMNS if own(directory, name)]
    if "768" not in found and "1536" in found:
        found.insert(1, "768")
    return found


def derived(directory: Path, name: str) -> bool:
    return name == "768" and not own(directory, name) and own(directory, "1536")


def source_file(directory: Path, name: str) -> str:
    """The file a column's rows are read from (768's may be the 1536 file)."""
    return FILES["1536"] if derived(directory, name) else FILES[name]


def checked(vectors: np.ndarray, what: str) -> np.ndarray:
    """`vectors` unchanged if every row is finite and non-zero; one clear error naming the first bad row."""
    bad = ~np.isfinite(vectors).all(axis=-1) | ~(np.abs(vectors) > 0).any(axis=-1)
    if bad.any():
        row = int(np.flatnonzero(bad.reshape(-1))[0])
        raise DimbenchError(f"{what}: row {row} is not a finite, non-zero vector")
    return vectors


def unit(vectors: np.ndarray, what: str) -> np.ndarray:
    """Rows L2-normalized in float64 (float32 squares of tiny or huge values under- or overflow), then
    float32, checked before and after."""
    x = checked(np.asarray(vectors, dtype=np.float64), what)
    out = (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)
    return checked(out, f"{what} (normalized)")


def derive(vectors: np.ndarray, what: str = "the derived 768 column") -> np.ndarray:
    """768 from 1536: truncate and renormalize (embeddings.shorten), checked."""
    return checked(embeddings.shorten(vectors), what)


class ColumnRows:
    """Rows [start, stop) of one column, read once per block even when 768 derives from 1536."""

    def __init__(self, directory: Path, name: str) -> None:
        directory = Path(directory)
        if name not in held(directory):
            raise DimbenchError(f"corpus {directory} has no {name} column")
        self.name = name
        self.derived = derived(directory, name)
        self.reader = RowReader(directory / source_file(directory, name))

    def __len__(self) -> int:
        return len(self.reader)

    def of(self, raw: np.ndarray) -> np.ndarray:
        """This column's rows from its source file's rows."""
        return derive(raw) if self.derived else raw

    def rows(self, start: int, stop: int) -> np.ndarray:
        return self.of(self.reader.rows(start, stop))

    def take(self, indices: np.ndarray) -> np.ndarray:
        return self.of(self.reader.take(indices))

    def close(self) -> None:
        self.reader.close()
