"""An imported corpus whose 768 and 1536 columns come from two unrelated models: each column's exact
search, under every access arm, must find exactly what that column's own ground truth says.

The two embeddings are drawn independently, so any ground truth, query vector or tie credit derived from
the other column (the 1536 shortened to 768) shows up as recall below 1.000 here.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest

from dimbench.corpus.generate import verify
from dimbench.corpus.reader import Corpus
from dimbench.database import db, seed_policy
from dimbench.realdata.importer import import_file
from dimbench.study.configs import Arm, Build
from dimbench.study.measure import run_cell
from dimbench.vocabulary import ACCESS_ARMS, SCOPES_BY_ACCESS
from tests.conftest import loaded_and_settled

K = 10
# Workspace sizes that put tenants in every size bucket (tiny < 0.1 % of rows ≤ small < 1 % ≤ medium
# < 10 % ≤ large), whatever a few held-out query chunks take away: 2,400 chunks.
SIZES = [1300] + [80] * 5 + [12] * 20 + [2] * 230


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim))
    return np.round(v / np.linalg.norm(v, axis=1, keepdims=True), 5)


def two_model_rows() -> list[dict]:
    """Rows whose embedding_768 is drawn independently of embedding_1536 (two unrelated models)."""
    n = sum(SIZES)
    e1536 = unit_rows(np.random.default_rng(1536), n, 1536)
    e768 = unit_rows(np.random.default_rng(768), n, 768)
    out, i = [], 0
    for w, size in enumerate(SIZES):
        for c in range(size):
            out.append(
                {
                    "workspace": f"tenant {w}",
                    "document": f"w{w}-doc{c // 4}",
                    "text": f"passage {w}/{c}",
                    "embedding_1536": e1536[i].tolist(),
                    "embedding_768": e768[i].tolist(),
                }
            )
            i += 1
    return out


@pytest.fixture(scope="module")
def two_model_corpus(tmp_path_factory, new_database):
    """The imported corpus loaded and settled (no vector index: every build here is exact)."""
    tmp = tmp_path_factory.mktemp("two-models")
    path = tmp / "chunks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in two_model_rows()))
    directory = import_file(path, tmp / "corpus", queries_per_bucket=20)
    return loaded_and_settled(new_database("twomodels"), Corpus(directory, verify(directory)))


def recall_by_cell(conn, build: Build, access: str, queries) -> dict[tuple[str, str], float]:
    groups = defaultdict(list)
    for q in queries:
        if q.scope in SCOPES_BY_ACCESS[access]:
            groups[(q.scope, q.bucket)].append(q)
    out = {}
    for cell, qs in sorted(groups.items()):
        result = run_cell(conn, Arm(access, build, K), qs, warmup=0)
        out[cell] = float(np.mean(result.recalls))
    return out


@pytest.mark.parametrize("column_type", ["vector768", "vector1536"])
@pytest.mark.parametrize("access", ACCESS_ARMS)
def test_exact_search_of_each_column_scores_recall_one_in_every_bucket(two_model_corpus, access, column_type):
    dsn, queries = two_model_corpus
    build = Build(column_type, "exact", {})
    with db.connect(dsn) as conn:
        db.use_vectors(conn)
        if access in seed_policy.VARIANTS:
            with seed_policy.seed_policy(conn, access):
                recalls = recall_by_cell(conn, build, access, queries)
        else:
            recalls = recall_by_cell(conn, build, access, queries)
    assert {bucket for _, bucket in recalls} == {"tiny", "small", "medium", "large"}, recalls
    assert {cell: round(r, 3) for cell, r in recalls.items()} == dict.fromkeys(recalls, 1.0)
