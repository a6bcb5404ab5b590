"""One style of validating the TOML files users give dimbench (corpus specs, grids): one-line errors
that name the file and the key, in the same words everywhere."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dimbench.errors import DimbenchError


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The parsed file; a missing, unreadable or malformed one is a one-line DimbenchError."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DimbenchError(f"no {what} at {path}") from exc
    except OSError as exc:
        raise DimbenchError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DimbenchError(f"{path}: not valid TOML: {exc}") from exc


def no_unknown(table: Mapping[str, Any], known: Iterable[str], where: str, prefix: str = "") -> None:
    """Refuse keys nobody reads: a typo must not silently fall back to a default."""
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise DimbenchError(f"{where}: unknown key {prefix}{unknown[0]}")


def typed(table: Mapping[str, Any], key: str, kind: type, default: Any, where: str, prefix: str = "") -> Any:
    """table[key] (or the default; None = required) checked to be `kind`; ints are accepted as floats,
    booleans never as numbers."""
    value = table.get(key, default)
    if value is None:
        raise DimbenchError(f"{where}: missing {prefix}{key}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise DimbenchError(f"{where}: {prefix}{key} must be {kind.__name__}, got {value!r}")
    return value
