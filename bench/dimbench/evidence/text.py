"""How the records write numbers: one place, so a bound reads the same in every table and sentence."""

from __future__ import annotations

import math


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def interval(ci: list[float] | None, digits: int = 3) -> str:
    """An interval rounded outward, so that it never reads narrower than measured (a lower bound of
    0.9496 is shown as 0.949, not as a 0.950 that would seem to meet a 0.95 target)."""
    if not ci:
        return ""
    scale, eps = 10**digits, 1e-9  # eps: 0.95 * 1000 must stay 950, not floor to 949
    lo, hi = math.floor(ci[0] * scale + eps) / scale, math.ceil(ci[1] * scale - eps) / scale
    return f" [{lo:.{digits}f}, {hi:.{digits}f}]"
