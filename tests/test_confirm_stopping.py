"""Confirmation asks a cell's candidates in batches, interleaved, and a candidate stops once its cell is
settled while the others go on (confirm.ask_until_settled): one hard candidate no longer keeps every other
asking to the end of the pool."""

from __future__ import annotations

from dimbench.study.confirm import ask_until_settled

POOL = list(range(300))  # stands for the cell's queries: the scheduling reads only their order


def schedule(settles_after: dict[str, int | None], batch: int = 50) -> tuple[dict[str, list[int]], int]:
    """Each candidate's asked queries, in order, when it settles after that many (None: never)."""
    asked: dict[str, list[int]] = {name: [] for name in settles_after}

    def settled(name: str, n: int) -> bool:
        after = settles_after[name]
        return after is not None and n >= after

    used = ask_until_settled(list(asked), POOL, batch, lambda e, q: asked[e].append(q), settled)
    return asked, used


def test_a_settled_candidate_stops_while_an_unsettled_one_goes_on():
    asked, used = schedule({"easy": 50, "hard": None})
    assert len(asked["easy"]) == 50
    assert len(asked["hard"]) == 300 and used == 300


def test_every_candidate_answers_a_prefix_of_the_pool_in_order():
    asked, _ = schedule({"a": 100, "b": 150, "c": None})
    for queries in asked.values():
        assert queries == POOL[: len(queries)]


def test_the_cell_ends_when_every_candidate_is_settled():
    asked, used = schedule({"a": 50, "b": 100})
    assert used == 100 and len(asked["a"]) == 50 and len(asked["b"]) == 100


def test_settled_is_asked_after_whole_batches_only():
    asked, _ = schedule({"a": 60}, batch=50)
    assert len(asked["a"]) == 100  # settled at 60 is seen after the second batch
