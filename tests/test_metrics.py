"""Metric functions on hand-made cases."""

from __future__ import annotations

import math

import pytest

from dimbench import stats


def test_recall_is_one_when_all_true_neighbours_come_back() -> None:
    assert stats.recall_at_k([3, 1, 2], [0.1, 0.2, 0.3], [1, 2, 3], [0.1, 0.2, 0.3], k=3) == 1.0


def test_recall_counts_the_share_of_true_neighbours_found() -> None:
    assert stats.recall_at_k([1, 9], [0.1, 0.5], [1, 2], [0.1, 0.2], k=2) == 0.5


def test_recall_accepts_a_tied_row_in_place_of_the_kth_true_row() -> None:
    # Rows 2 and 7 are equally far; exact search listed 2, the index returned 7: both are right.
    assert stats.recall_at_k([1, 7], [0.1, 0.2], [1, 2], [0.1, 0.2], k=2) == 1.0


def test_recall_rejects_a_row_just_beyond_the_tie_slack() -> None:
    assert stats.recall_at_k([1, 7], [0.1, 0.2 + 1e-3], [1, 2], [0.1, 0.2], k=2) == 0.5


def test_recall_counts_a_duplicated_row_once() -> None:
    assert stats.recall_at_k([1, 1], [0.1, 0.1], [1, 2], [0.1, 0.2], k=2) == 0.5


def test_recall_uses_what_exists_when_fewer_than_k_rows_are_visible() -> None:
    assert stats.recall_at_k([5, 6], [0.1, 0.3], [5, 6], [0.1, 0.3], k=10) == 1.0


def test_recall_of_an_empty_answer_is_zero() -> None:
    assert stats.recall_at_k([], [], [1, 2], [0.1, 0.2], k=2) == 0.0


def test_percentiles_interpolate_linearly() -> None:
    p = stats.percentiles([1.0, 2.0, 3.0, 4.0, 5.0])
    assert p["p50"] == 3.0
    assert p["p95"] == pytest.approx(4.8)
    assert p["p99"] == pytest.approx(4.96)


def test_percentiles_of_nothing_are_not_measured_not_zero() -> None:
    assert stats.percentiles([]) == {"p50": None, "p95": None, "p99": None}


def test_ndcg_is_one_for_the_ideal_order() -> None:
    assert stats.ndcg_at_k([2, 1, 0], [2, 1]) == pytest.approx(1.0)


def test_ndcg_matches_a_hand_computed_value() -> None:
    # returned grades 0,2 ; ideal 2 -> dcg = 3/log2(3), idcg = 3/log2(2)
    assert stats.ndcg_at_k([0, 2], [2]) == pytest.approx(1 / math.log2(3))


def test_ndcg_is_undefined_when_nothing_is_relevant() -> None:
    assert stats.ndcg_at_k([0, 0], []) is None


def test_short_share_counts_queries_with_fewer_rows_than_expected() -> None:
    assert stats.short_share([10, 4, 10, 0], [10, 10, 10, 0]) == 0.25
