"""Read and validate import rows (JSONL or Parquet), naming the line and field of every problem."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dimbench.errors import DimbenchError

EMBEDDINGS = {"embedding_1536": 1536, "embedding_768": 768, "embedding_ada": 1536}
REQUIRED = ("workspace", "document", "text")
OPTIONAL = ("id", "chunk_no", "title", *EMBEDDINGS)
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # the smallest normal float32


@dataclass
class Row:
    line: int
    workspace: str
    document: str
    text: str
    title: str | None
    embeddings: dict[str, np.ndarray]
    id: str | None = None


def read_raw(path: Path) -> Iterator[tuple[int, Any]]:
    """(line or row number, raw record) from a .jsonl or .parquet file."""
    if not path.is_file():
        raise DimbenchError(f"no import file at {path}")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise DimbenchError("reading Parquet needs pyarrow: pip install 'dimbench[parquet]'") from exc
        try:
            table = pq.ParquetFile(path)
            number = 0
            for batch in table.iter_batches(batch_size=2048):
                for record in batch.to_pylist():
                    number += 1
                    yield number, record
        except (OSError, ValueError) as exc:
            raise DimbenchError(f"{path.name}: not a readable Parquet file ({exc})") from exc
        return
    if path.suffix not in (".jsonl", ".ndjson"):
        raise DimbenchError(f"{path.name}: unknown format (use .jsonl or .parquet)")
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DimbenchError(f"{path.name}:{number}: not UTF-8 text") from None
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                message = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                raise DimbenchError(f"{path.name}:{number}: not valid JSON ({message})") from None


def validate(path: Path) -> Iterator[Row]:
    where = path.name
    first_embeddings: set[str] | None = None
    for number, record in read_raw(path):
        at = f"{where}:{number}"
        check_record(record, at, REQUIRED, OPTIONAL, strings=("id",))
        chunk_id = record.get("id")
        vectors = vectors_of(record, at)
        if "embedding_768" not in vectors and "embedding_1536" in vectors:
            check_derivable(vectors["embedding_1536"], f"{at}: embedding_1536")
        present = set(vectors) | ({"id"} if chunk_id is not None else set())
        if first_embeddings is None:
            first_embeddings = present
        elif present != first_embeddings:
            missing = sorted(first_embeddings ^ present)[0]
            raise DimbenchError(f"{at}: {missing} is present on some rows and missing on others")
        title = record.get("title")
        yield Row(
            number,
            record["workspace"],
            record["document"],
            record["text"],
            title if isinstance(title, str) else None,
            vectors,
            chunk_id,
        )


def check_record(
    record: Any, at: str, required: tuple[str, ...], optional: tuple[str, ...], strings: tuple[str, ...] = ()
) -> None:
    """An object with only known fields, the `required` ones (and any of `strings` given) non-empty
    strings."""
    if not isinstance(record, dict):
        raise DimbenchError(f"{at}: expected an object with {', '.join(required)}")
    unknown = sorted(set(record) - set(required) - set(optional))
    if unknown:
        raise DimbenchError(f"{at}: unknown field {unknown[0]!r}")
    for key in (*required, *strings):
        value = record.get(key)
        if (key in required or value is not None) and (not isinstance(value, str) or not value.strip()):
            raise DimbenchError(f"{at}: {key} must be a non-empty string")


def vectors_of(record: dict[str, Any], at: str) -> dict[str, np.ndarray]:
    """The embedding_* fields of a record, each checked (float64; stored as float32 later)."""
    return {
        key: check_vector(record[key], dim, f"{at}: {key}")
        for key, dim in EMBEDDINGS.items()
        if record.get(key) is not None
    }


def check_derivable(vector: np.ndarray, where: str) -> None:
    """A 1536 vector whose 768 column will be derived from it must have a non-zero prefix."""
    if not np.any(vector[:768]):
        raise DimbenchError(
            f"{where} has only zeros in its first 768 values: the derived 768 embedding would have no "
            "direction (give embedding_768 of its own)"
        )


def check_vector(value: Any, dim: int, where: str) -> np.ndarray:
    """A list of `dim` numbers that float32 holds as they are: finite, none so large that it overflows
    float32 or so small (but not zero) that it underflows, not all zero. Returned as float64."""
    if not isinstance(value, list | tuple):
        raise DimbenchError(f"{where} must be a list of numbers")
    if len(value) != dim:
        raise DimbenchError(f"{where} has {len(value)} dimensions, expected {dim}")
    if any(type(x) not in (int, float) for x in value):  # bool is no number here, nor a string
        raise DimbenchError(f"{where} has a value that is not a number")
    try:
        array = np.asarray(value, dtype=np.float64)
    except OverflowError:  # an integer beyond float64
        raise DimbenchError(f"{where} has a value that overflows float32") from None
    if not np.isfinite(array).all():
        raise DimbenchError(f"{where} has NaN or infinite values")
    magnitude = np.abs(array)
    if (magnitude > FLOAT32_MAX).any():
        raise DimbenchError(
            f"{where} has a value that overflows float32 ({array[magnitude > FLOAT32_MAX][0]:g})"
        )
    tiny = (magnitude > 0) & (magnitude < FLOAT32_TINY)
    if tiny.any():
        raise DimbenchError(f"{where} has a value that underflows float32 ({array[tiny][0]:g})")
    if not magnitude.any():
        raise DimbenchError(f"{where} is a zero vector (no direction to search by)")
    return array
