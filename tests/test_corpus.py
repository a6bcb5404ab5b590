"""The synthetic corpus: deterministic, bounded in memory, skewed, with exact ground truth."""

from __future__ import annotations

import dataclasses
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from dimbench.corpus import embeddings, generate
from dimbench.corpus.cache import ensure_corpus
from dimbench.corpus.reader import Corpus
from dimbench.corpus.spec import load_spec, parse_spec
from dimbench.errors import DimbenchError
from dimbench.paths import datasets_dir
from tests.cli_helpers import assert_one_line_error, run_cli

TINY = datasets_dir() / "tiny.toml"


def quiet(*_args) -> None:
    pass


def spec_file(tmp_path: Path, **overrides) -> Path:
    """datasets/tiny.toml with some corpus keys changed."""
    import tomllib

    raw = tomllib.loads(TINY.read_text())
    raw["corpus"].update(overrides)
    lines = ["[corpus]"] + [f"{k} = {json.dumps(v)}" for k, v in raw["corpus"].items()]
    path = tmp_path / f"tiny-{abs(hash(json.dumps(overrides, sort_keys=True)))}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Corpus:
    return ensure_corpus(TINY, tmp_path_factory.mktemp("corpus") / "tiny", progress=False, log=quiet)


@pytest.fixture(scope="module")
def smoke() -> Corpus:
    return ensure_corpus(datasets_dir() / "smoke.toml", progress=False, log=quiet)


def test_the_same_spec_gives_byte_identical_files(tiny, tmp_path):
    again = ensure_corpus(TINY, tmp_path / "again", progress=False, log=quiet)
    assert again.manifest["files"] == tiny.manifest["files"]
    for name in tiny.manifest["files"]:
        assert (again.directory / name).read_bytes() == (tiny.directory / name).read_bytes()


def test_peak_memory_follows_the_block_size_not_the_corpus_size(tmp_path):
    def peak(chunks: int) -> int:
        raw = dataclasses.asdict(load_spec(TINY))
        raw.pop("name")
        raw.update(chunks=chunks, block_rows=256, queries_per_bucket=2)
        spec = parse_spec({"corpus": raw}, f"mem{chunks}")
        tracemalloc.start()
        generate.generate(spec, tmp_path / f"mem{chunks}", progress=False)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, big = peak(2000), peak(16000)
    assert big < 2 * small  # 8× the rows, well under 2× the memory


def test_workspace_sizes_are_skewed_and_every_bucket_is_covered(smoke):
    stats = smoke.manifest["statistics"]
    assert stats["workspace_share"]["largest"] > 0.10
    assert all(n > 0 for n in stats["workspaces_per_bucket"].values())
    assert set(stats["queries_per_scope_bucket"].values()) == {smoke.spec["queries_per_bucket"]}


def test_every_workspace_has_an_owner_and_users_have_one_to_three(tiny):
    members = tiny.memberships
    owners = {int(ws) for ws, _, role in members.tolist() if role == 0}
    assert owners == set(range(len(tiny.ws_documents)))
    per_user = np.bincount(members[:, 1])
    assert per_user.min() >= 1 and per_user.max() <= tiny.spec["max_memberships"]


def test_the_768_embedding_is_the_renormalized_prefix_of_the_1536(tiny):
    block = next(tiny.chunk_blocks(100))
    prefix = block.emb_1536[:, :768]
    np.testing.assert_allclose(
        block.emb_768, prefix / np.linalg.norm(prefix, axis=1, keepdims=True), rtol=1e-6
    )
    np.testing.assert_allclose(np.linalg.norm(block.emb_1536, axis=1), 1.0, rtol=1e-5)


def test_the_tail_share_assumption_moves_the_768_vs_1536_overlap(tmp_path):
    overlap = {}
    for share in (0.0, 0.3):
        corpus = ensure_corpus(
            spec_file(tmp_path, matryoshka_tail_share=share),
            tmp_path / f"s{share}",
            progress=False,
            log=quiet,
        )
        overlap[share] = corpus.manifest["statistics"]["top10_overlap_768_vs_1536"]
    assert overlap[0.3] < overlap[0.0]


def test_ground_truth_matches_a_brute_force_recomputation(tiny):
    data = tiny.queries()
    asked = tiny.query_vectors()["1536"]
    emb = np.load(tiny.directory / "emb_1536.npy")
    chunk_ws = np.repeat(np.arange(len(tiny.ws_documents)), tiny.ws_documents * tiny.chunks_per_document)
    by_user: dict[int, list[int]] = {}
    for ws, user, _ in tiny.memberships.tolist():
        by_user.setdefault(user, []).append(ws)
    for i in range(len(data["user"])):
        ws = int(data["workspace"][i])
        visible = np.isin(chunk_ws, [ws] if ws >= 0 else by_user[int(data["user"][i])])
        for dim in (768, 1536):
            e = emb if dim == 1536 else embeddings.shorten(emb)
            q = asked[i] if dim == 1536 else embeddings.shorten(asked[i])
            d = np.where(visible, 1 - e @ q, np.inf)
            want = np.argsort(d, kind="stable")[: tiny.spec["k"]]
            want = want[np.isfinite(d[want])]  # a user may see fewer than k rows
            got = data[f"truth_{dim}_ids"][i]
            got_d = data[f"truth_{dim}_dist"][i]
            assert (got >= 0).sum() == len(want)
            assert np.allclose(np.sort(d[want]), got_d[got >= 0], atol=1e-5)


def test_the_running_top_k_takes_a_block_for_some_queries_only():
    """Ground truth goes workspace by workspace, each block pushed for the queries that may see it: the
    others keep what they had, and a query that saw fewer than k rows keeps empty places (-1, inf)."""
    from dimbench.corpus.groundtruth import TopK

    rng = np.random.default_rng(3)
    top = TopK(3, 4)
    first, second = rng.random((2, 6)).astype(np.float32), rng.random((2, 2)).astype(np.float32)
    top.push(first, 0, np.array([0, 1]))
    top.push(second, 6, np.array([1, 2]))
    ids, dist = top.result()
    assert (ids[0] == np.argsort(first[0])[:4]).all()
    both = np.concatenate([first[1], second[0]])
    assert (ids[1] == np.argsort(both)[:4]).all()
    assert ids[2].tolist() == [6 + int(np.argmin(second[1])), 6 + int(np.argmax(second[1])), -1, -1]
    assert np.isinf(dist[2, 2:]).all()


def test_a_cached_corpus_is_reused(tiny):
    messages: list[str] = []
    ensure_corpus(TINY, tiny.directory, progress=False, log=messages.append)
    assert "reusing" in messages[0]


def test_a_corrupted_cache_is_detected(tiny, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny.directory, broken)
    data = bytearray((broken / "emb_1536.npy").read_bytes())
    data[-1] ^= 0xFF
    (broken / "emb_1536.npy").write_bytes(bytes(data))
    with pytest.raises(DimbenchError, match="corrupted .*emb_1536.npy"):
        ensure_corpus(TINY, broken, progress=False, log=quiet)


def test_a_corrupted_cache_is_one_line_from_the_cli(tiny, tmp_path):
    import shutil

    broken = tmp_path / "broken-cli"
    shutil.copytree(tiny.directory, broken)
    (broken / "queries.npz").write_bytes(b"garbage")
    assert_one_line_error(
        run_cli("corpus", "generate", "--spec", str(TINY), "--out", str(broken)), "corrupted"
    )


BASE = "[corpus]\nseed = 1\nchunks = 100\nworkspaces = 2\nusers = 4\ntopics = 2\n"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[corpus]\nseed = 1\nchunks = 100\nworkspaces = 2\nusers = 4\ntopics = 2\ncolour = 1\n",
            "unknown key corpus.colour",
        ),
        (
            "[corpus]\nseed = 1\nchunks = 'many'\nworkspaces = 2\nusers = 4\ntopics = 2\n",
            "corpus.chunks must be int",
        ),
        (
            "[corpus]\nseed = 1\nchunks = -100\nworkspaces = 2\nusers = 4\ntopics = 2\n",
            "corpus.chunks must be a positive",
        ),
        (
            "[corpus]\nseed = 1\nchunks = 100\nworkspaces = 2\nusers = 4\ntopics = 2\ndims = [768]\n",
            "corpus.dims is not supported",
        ),
        ("[corpus]\nseed = 1\nchunks = 100\nworkspaces = 5\nusers = 9\ntopics = 2\nk = 1000\n", "corpus.k"),
        ("[corpus]\nseed = 1\nworkspaces = 2\nusers = 4\ntopics = 2\n", "missing corpus.chunks"),
        ("[corpus\n", "not valid TOML"),
        # Values that once generated garbage (NaN embeddings) or a traceback:
        (BASE + "noise = inf\n", "corpus.noise must be a finite number, got inf"),
        (BASE + "noise = nan\n", "corpus.noise must be a finite number"),
        (BASE + "topic_spread = 1e300\n", "corpus.topic_spread must be in [0, 1000000]"),
        (BASE.replace("seed = 1", "seed = -1"), "corpus.seed must be in [0, 4294967295], got -1"),
        (BASE.replace("chunks = 100", "chunks = 1099511627776"), "corpus.chunks must be in [0, 4294967295]"),
        (
            BASE.replace("chunks = 100", "chunks = 4000000000") + "max_memberships = 1\n",
            "of memory to generate",
        ),
    ],
)
def test_a_bad_spec_is_one_line_naming_the_key(tmp_path, toml, message):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    assert_one_line_error(
        run_cli("corpus", "generate", "--spec", str(path), "--out", str(tmp_path / "out")), message
    )
    assert not (tmp_path / "out").exists()


def test_a_spec_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(BASE.encode() + b"# caf\xe9\n")
    assert_one_line_error(run_cli("corpus", "generate", "--spec", str(path)), "not UTF-8 text")


def test_a_missing_spec_is_one_line(tmp_path):
    assert_one_line_error(
        run_cli("corpus", "generate", "--spec", str(tmp_path / "none.toml")), "no corpus spec"
    )


def test_the_running_top_k_keeps_the_stable_order_of_a_full_sort_when_a_block_is_partitioned():
    from dimbench.corpus.groundtruth import TopK

    rng = np.random.default_rng(7)
    # Rounded distances: many ties, also at the k-th place, broken by id in both.
    blocks = [np.round(rng.random((50, 300)), 1).astype(np.float32) for _ in range(4)]
    top = TopK(50, 10)
    for b, block in enumerate(blocks):
        top.push(block, b * 300)
    everything = np.concatenate(blocks, axis=1)
    ids = np.broadcast_to(np.arange(everything.shape[1]), everything.shape)
    expected = np.lexsort((ids, everything), axis=1)[:, :10]
    assert (top.result()[0] == expected).all()
