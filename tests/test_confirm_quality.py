"""Confirmation keeps asking while a candidate's quality is undecided: its nDCG@10 shortfall interval
crosses the rule's tolerance (the rule reads the lower bound, so stopping there fails it on noise)."""

from __future__ import annotations

import uuid

import numpy as np

from dimbench.study.arms import Answer
from dimbench.study.measure import StudyQuery, quality_decided

TOLERANCE = 0.02


def asked(misses: int, n: int = 100) -> tuple[list[Answer], list[StudyQuery]]:
    """n queries whose best option's exact search scores nDCG 1; the configuration misses `misses`."""
    answers, queries = [], []
    for i in range(n):
        wanted = uuid.uuid4()
        queries.append(
            StudyQuery(
                qid=i,
                user=uuid.uuid4(),
                scope="all",
                bucket="large",
                filter_ids=(),
                visible=frozenset(),
                vector_1536=np.zeros(1536, dtype=np.float32),
                truth_ids={},
                truth_distances={},
                relevance={wanted: 1},
                exact_ndcg={"1536": 1.0, "768": 0.9},
            )
        )
        returned = [uuid.uuid4()] if i < misses else [wanted]
        answers.append(Answer(returned, [uuid.uuid4()], [0.0], 1000))
    return answers, queries


def test_a_shortfall_whose_interval_crosses_the_tolerance_is_undecided():
    assert not quality_decided(*asked(misses=2), TOLERANCE)  # -2 %: its interval spans -0.02


def test_a_shortfall_wholly_within_the_tolerance_is_decided():
    assert quality_decided(*asked(misses=0), TOLERANCE)


def test_a_shortfall_wholly_beyond_the_tolerance_is_decided():
    assert quality_decided(*asked(misses=15), TOLERANCE)


def test_without_a_tolerance_quality_never_holds_confirmation_back():
    assert quality_decided(*asked(misses=2), None)
