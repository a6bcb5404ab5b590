"""Read and validate import rows (JSONL or Parquet), naming the line and field of every problem."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dimbench.errors import DimbenchError

EMBEDDINGS = {"embedding_1536": 1536, "embedding_768": 768, "embedding_ada": 1536}
REQUIRED = ("workspace", "document", "text")
OPTIONAL = ("chunk_no", "title", *EMBEDDINGS)


@dataclass
class Row:
    line: int
    workspace: str
    document: str
    text: str
    title: str | None
    embeddings: dict[str, list[float]]


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
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DimbenchError(f"{path.name}:{number}: not valid JSON ({exc.msg})") from exc


def validate(path: Path) -> Iterator[Row]:
    where = path.name
    first_embeddings: set[str] | None = None
    for number, record in read_raw(path):
        at = f"{where}:{number}"
        if not isinstance(record, dict):
            raise DimbenchError(f"{at}: expected an object with workspace, document, text")
        unknown = sorted(set(record) - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            raise DimbenchError(f"{at}: unknown field {unknown[0]!r}")
        for key in REQUIRED:
            value = record.get(key)
            if not isinstance(value, str) or not value.strip():
                raise DimbenchError(f"{at}: {key} must be a non-empty string")
        vectors = {}
        for key, dim in EMBEDDINGS.items():
            if record.get(key) is None:
                continue
            vectors[key] = check_vector(record[key], dim, f"{at}: {key}")
        present = set(vectors)
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
        )


def check_vector(value: Any, dim: int, where: str) -> list[float]:
    if not isinstance(value, list | tuple):
        raise DimbenchError(f"{where} must be a list of numbers")
    if len(value) != dim:
        raise DimbenchError(f"{where} has {len(value)} dimensions, expected {dim}")
    if any(isinstance(x, bool) or not isinstance(x, int | float) for x in value):
        raise DimbenchError(f"{where} has a value that is not a number")
    if any(not math.isfinite(x) for x in value):
        raise DimbenchError(f"{where} has NaN or infinite values")
    if not any(value):
        raise DimbenchError(f"{where} is a zero vector (no direction to search by)")
    return [float(x) for x in value]
