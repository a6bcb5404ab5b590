"""One style of validating the TOML files users give dimbench (corpus specs, grids): one-line errors
that name the file and the key, in the same words everywhere."""

from __future__ import annotations

import math
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
    except IsADirectoryError as exc:
        raise DimbenchError(f"{path} is a directory, not a {what} file") from exc
    except OSError as exc:
        raise DimbenchError(f"cannot read {what} {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise DimbenchError(f"{path}: not UTF-8 text (byte {exc.start}): not a {what}") from exc
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
        raise DimbenchError(f"{where}: {prefix}{key} must be {kind.__name__}, got {short(value)}")
    if kind is float and not math.isfinite(value):
        raise DimbenchError(f"{where}: {prefix}{key} must be a finite number, got {value!r}")
    return value


def in_range(
    value: float,
    low: float,
    high: float,
    where: str,
    key: str,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Refuse a number outside [low, high] (either end open), naming the allowed range."""
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        interval = f"{'(' if low_open else '['}{_bound(low)}, {_bound(high)}{')' if high_open else ']'}"
        raise DimbenchError(f"{where}: {key} must be in {interval}, got {value!r}")


def _bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def unique_list(
    table: Mapping[str, Any], key: str, item: type, default: Any, where: str, *, allowed: Iterable[Any] = ()
) -> list[Any]:
    """table[key] as a non-empty list of distinct `item`s (from `allowed` when given)."""
    values = typed(table, key, list, default, where)
    allowed = tuple(allowed)
    if not values:
        raise DimbenchError(f"{where}: {key} must not be empty")
    for value in values:
        if not isinstance(value, item) or isinstance(value, bool) and item is not bool:
            raise DimbenchError(f"{where}: {key} must list {item.__name__} values, got {short(value)}")
        if allowed and value not in allowed:
            raise DimbenchError(f"{where}: {key} has {value!r}; known: {', '.join(map(str, allowed))}")
    repeated = next((v for i, v in enumerate(values) if v in values[:i]), None)
    if repeated is not None:
        raise DimbenchError(f"{where}: {key} lists {repeated!r} twice")
    return values


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
