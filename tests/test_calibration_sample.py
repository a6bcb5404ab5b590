"""Which queries a measured parameter (routed's T) is calibrated on."""

from __future__ import annotations

from types import SimpleNamespace

from dimbench.study.screening import CALIBRATION_QUERIES, calibration_sample


def groups(*scopes: str) -> dict:
    return {
        (s, b): [SimpleNamespace(scope=s, bucket=b, i=i) for i in range(30)]
        for s in scopes
        for b in ("tiny", "large")
    }


def test_calibration_uses_the_all_my_workspaces_scope_where_the_corpus_has_it():
    picked = calibration_sample(groups("all", "workspace"))
    assert {q.scope for q in picked} == {"all"} and len(picked) == 2 * CALIBRATION_QUERIES


def test_a_corpus_asked_only_per_workspace_still_calibrates_on_its_queries():
    # an empty sample would set T = 0: every call down the index, the tiny tenants' recall lost
    picked = calibration_sample(groups("workspace"))
    assert {q.scope for q in picked} == {"workspace"} and len(picked) == 2 * CALIBRATION_QUERIES
