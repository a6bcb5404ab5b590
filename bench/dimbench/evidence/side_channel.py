"""The side channel's verdict: did another tenant's data move a design's numbers in every cycle?

Read from the passes the study recorded (study/sidechannel.py): a design leaks only when every pass
with the foreign cluster lies beyond every pass without it, on the same side (in p50 or in
short-result share) — a rank test whose chance under no effect is 2 / C(2c+1, c) (0.057 for three
cycles), stated next to every verdict.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def leaks(entry: dict[str, Any]) -> bool | None:
    """Did the other tenant's data move this design's numbers in every cycle?

    A leak: every pass with the cluster lies beyond every pass without it, on the same side — in p50 or in
    short-result share. If the passes were exchangeable (no effect) that happens by chance with
    probability `chance(entry)` (2 / C(7, 3) ≈ 0.06 for three cycles). None — not judged — for
    fewer than two passes with the cluster (results measured before repeated cycles): one pass
    against its neighbours cannot tell a move from the machine's drift between passes."""
    moved = moved_by(entry)
    return None if moved is None else bool(moved)


def moved_by(entry: dict[str, Any]) -> list[str] | None:
    """What the cluster separated: "p50" and/or "short share" (empty: nothing); None when not judged."""
    split = _split(entry)
    if split is None:
        return None
    measures = (("p50", "p50_ms"), ("short share", "short_share"))
    return [name for name, key in measures if _separated(*split, key)]


def _split(entry: dict[str, Any]) -> tuple[list[dict], list[dict]] | None:
    """(passes without the cluster, passes with it); None — not judged — for fewer than two with it."""
    passes = entry.get("passes") or []
    with_ = [p for p in passes if p["cluster"]]
    if len(with_) < 2:
        return None
    return [p for p in passes if not p["cluster"]], with_


def _separated(without: list[dict], with_: list[dict], key: str) -> bool:
    a = [p[key] for p in without]
    b = [p[key] for p in with_]
    if None in a or None in b:
        return False
    return min(b) > max(a) or max(b) < min(a)


def chance(entry: dict[str, Any]) -> float | None:
    """The probability that exchangeable passes separate as a leak requires (either side)."""
    split = _split(entry)
    if split is None:
        return None
    without, with_ = split
    return 2 / math.comb(len(without) + len(with_), len(with_))


def p50_floor(entry: dict[str, Any]) -> float | None:
    """How far the passes without the cluster spread around their median p50 (a share of it): a move
    inside that spread cannot separate, so a "no" bounds a leak by it rather than ruling one out."""
    split = _split(entry)
    if split is None:
        return None
    a = [p["p50_ms"] for p in split[0]]
    median = float(np.median(a))
    return max(max(a) / median - 1, 1 - min(a) / median) if median else None
