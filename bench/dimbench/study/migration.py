"""The grid's `[migration]` section: what re-embedding costs outside the database (list prices with their
date, tokens per chunk where the corpus does not count them, the embedding throughput). The report
reads it back from the run's identity; a grid without it gets these defaults, named as such."""

from __future__ import annotations

from typing import Any

from dimbench.errors import DimbenchError
from dimbench.tomlcheck import no_unknown

# USD per million input tokens, OpenAI's list price on the date given (OpenAI, "New embedding models and
# API updates", 2024-01-25: text-embedding-3-small $0.00002 / 1k tokens; ada-002 $0.0001 / 1k tokens).
DEFAULTS: dict[str, Any] = {
    "prices": {
        "text-embedding-3-small": {"usd_per_million_tokens": 0.02, "as_of": "2024-01-25"},
        "text-embedding-ada-002": {"usd_per_million_tokens": 0.10, "as_of": "2024-01-25"},
    },
    "price_source": "OpenAI, 'New embedding models and API updates' (2024-01-25)",
    "tokens_per_chunk": 400,  # an assumption: a typical RAG chunk; the corpus does not count tokens
    "tokens_per_minute": 1_000_000,  # an assumption: one API key's embedding rate limit
}
KEYS = set(DEFAULTS)


def parse_migration(raw: Any, where: str) -> dict[str, Any]:
    """The section with the defaults filled in; a bad value is one line naming it."""
    where = f"{where} [migration]"
    if raw is None:
        return dict(DEFAULTS)
    if not isinstance(raw, dict):
        raise DimbenchError(f"{where}: must be a table")
    no_unknown(raw, KEYS, where)
    out = {**DEFAULTS, **raw}
    for key in ("tokens_per_chunk", "tokens_per_minute"):
        value = out[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e12:
            raise DimbenchError(f"{where}: {key} must be a positive number, got {value!r}")
    prices = out["prices"]
    if not isinstance(prices, dict) or not prices:
        raise DimbenchError(f"{where}: prices must be a table of model = {{usd_per_million_tokens, as_of}}")
    for model, price in prices.items():
        if not isinstance(price, dict):
            raise DimbenchError(f"{where}: prices.{model} must be a table")
        no_unknown(price, {"usd_per_million_tokens", "as_of"}, f"{where} prices.{model}")
        usd, as_of = price.get("usd_per_million_tokens"), price.get("as_of")
        if isinstance(usd, bool) or not isinstance(usd, int | float) or not 0 <= usd < 1e6:
            raise DimbenchError(
                f"{where}: prices.{model}.usd_per_million_tokens must be a price, got {usd!r}"
            )
        if not isinstance(as_of, str) or not as_of:
            raise DimbenchError(f"{where}: prices.{model}.as_of must name the price list's date")
    return out
