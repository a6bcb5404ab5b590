"""Fuzzing what users type: grids, corpus specs, measurement lines and command-line values.

For any generated change to a valid input, the validator either accepts it or says what is wrong in one
DimbenchError; the command exits non-zero with one line and no traceback; and the directory it was given
is byte-identical afterwards. No other exception may escape: that would be a traceback for the user.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dimbench import cli
from dimbench.corpus.spec import parse_spec
from dimbench.errors import DimbenchError
from dimbench.evidence.results import check_row
from dimbench.paths import datasets_dir, grids_dir, repo_root
from dimbench.study.grid import parse_grid
from tests.cli_helpers import snapshot

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLI_FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**40, 10**18]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-46, 1e39, 1.5]),
    st.text(max_size=12),
    st.sampled_from(["", "..", "../x", "a/b", "vector768", "rls", "hnsw", "measured", "tiny", "abc"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a parsed TOML document a value can be replaced or removed."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += paths(child, (*prefix, i))
    return found


def mutated(document: dict, where: tuple, new: Any, delete: bool) -> dict:
    copy = json.loads(json.dumps(document))
    parent = copy
    for step in where[:-1]:
        parent = parent[step]
    if delete:
        del parent[where[-1]]
    else:
        parent[where[-1]] = new
    return copy


@st.composite
def changes(draw, document: dict) -> dict:
    """The document with one to three values replaced or removed (deeply, anywhere)."""
    out = document
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if not paths(out):  # everything removed already
            break
        where = draw(st.sampled_from(paths(out)))
        out = mutated(out, where, draw(VALUES), draw(st.booleans()))
    return out


def shipped(path: Path) -> dict:
    return tomllib.loads(path.read_text())


TINY_GRID = shipped(grids_dir() / "tiny.toml")
TINY_SPEC = shipped(datasets_dir() / "tiny.toml")
PUBLISHED_ROW = json.loads(
    (repo_root() / "results" / "small" / "measurements.jsonl").read_text().splitlines()[0]
)


# --- validators: accept, or one DimbenchError; nothing else --------------------------------------


@FUZZ
@given(changes(TINY_GRID))
def test_any_change_to_a_grid_is_accepted_or_refused_in_one_line(raw):
    try:
        grid = parse_grid(raw)
    except DimbenchError as exc:
        assert "\n" not in str(exc)
        return
    # Accepted: then it is a grid the study can run.
    assert 1 <= grid.k <= 100 and grid.access and len(set(grid.access)) == len(grid.access)
    assert grid.column_types and len(set(grid.column_types)) == len(grid.column_types)
    assert grid.confirm is None or 0 < grid.confirm.recall_target <= 1
    assert all(
        isinstance(v, int) and v >= 1 for spec in grid.indexes for vs in spec.query.values() for v in vs
    )


@FUZZ
@given(changes(TINY_SPEC))
def test_any_change_to_a_corpus_spec_is_accepted_or_refused_in_one_line(raw):
    try:
        spec = parse_spec(raw, "tiny")
    except DimbenchError as exc:
        assert "\n" not in str(exc)
        return
    floats = [getattr(spec, f) for f in ("noise", "topic_spread", "chunk_spread", "query_spread")]
    assert all(math.isfinite(v) and v >= 0 for v in floats) and spec.seed >= 0 and spec.chunks >= 1


@FUZZ
@given(changes(PUBLISHED_ROW))
def test_any_change_to_a_measurement_line_is_read_or_named_never_a_crash(row):
    problem = check_row(row)
    assert problem is None or isinstance(problem, str)
    if problem is None:
        assert row["recall_mean"] is None or 0 <= row["recall_mean"] <= 1


# --- commands: non-zero, one line, no traceback, the tree untouched ------------------------------


def toml_value(value: Any) -> str:
    """A TOML rendering of a JSON-like value (inline tables and arrays), enough for generated grids."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(document: dict) -> str:
    return "".join(f"{json.dumps(key)} = {toml_value(value)}\n" for key, value in document.items())


def run_main(*argv: str) -> tuple[int, str]:
    """The CLI in this process: its exit status and what it wrote to stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = cli.main(list(argv))
        except SystemExit as exc:  # argparse's usage errors
            status = exc.code if isinstance(exc.code, int) else 1
    return status, err.getvalue()


def assert_refused(status: int, stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert status != 0 and len(lines) == 1 and "Traceback" not in stderr, (status, stderr)


def test_the_toml_writer_round_trips_what_the_fuzzers_generate():
    assert tomllib.loads(to_toml(TINY_GRID)) == TINY_GRID


@CLI_FUZZ
@given(changes(TINY_GRID))
def test_run_with_any_grid_exits_in_one_line_and_writes_nothing(raw):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "grid.toml").write_text(to_toml(raw))
        before = snapshot(root)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DIMBENCH_RUNS", str(root / "runs"))
            # Valid or not, nothing can be measured here: the server is unreachable.
            status, stderr = run_main(
                "run", "--profile", str(root / "grid.toml"), "--dsn", "host=/nonexistent"
            )
        assert_refused(status, stderr)
        assert snapshot(root) == before


@CLI_FUZZ
@given(changes(TINY_SPEC))
def test_corpus_generate_with_any_bad_spec_exits_in_one_line_and_writes_nothing(raw):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "spec.toml").write_text(to_toml(raw))
        try:
            parse_spec(raw, "spec")
        except DimbenchError:
            pass
        else:
            return  # a valid spec generates a corpus: not this property's business
        before = snapshot(root)
        status, stderr = run_main(
            "corpus", "generate", "--spec", str(root / "spec.toml"), "--out", str(root / "c")
        )
        assert_refused(status, stderr)
        assert snapshot(root) == before


BAD_COUNTS = st.one_of(
    st.integers(max_value=0).map(str),
    st.sampled_from(["", "abc", "1.5", "1e3", "-1", "0", "nan", "inf", "0x10", " "]),
)
COUNT_FLAGS = [
    ("corpus", "load", "--spec", "tiny", "--block-rows"),
    ("overhead", "--queries"),
    ("stability", "--runs"),
]


@CLI_FUZZ
@given(st.sampled_from(COUNT_FLAGS), BAD_COUNTS)
def test_a_count_flag_with_a_bad_value_is_one_usage_line(flag, value):
    status, stderr = run_main(*flag, value, "--dsn", "host=/nonexistent")
    assert_refused(status, stderr)
    assert status == 2


@CLI_FUZZ
@given(st.sampled_from(["--to", "--results"]), st.sampled_from(["file", "foreign-dir", "foreign-plots"]))
def test_a_destination_dimbench_did_not_make_is_refused_and_left_as_it_was(tiny_results, option, kind):
    _, run_dir = tiny_results
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        target = root / "target"
        if kind == "file":
            target.write_text("mine\n")
        else:
            (target / "plots").mkdir(parents=True)
            (target / "plots" / "mine.png").write_bytes(b"mine")
            if kind == "foreign-plots":  # a results directory whose plots/ is the user's
                for name in ("run.json", "measurements.jsonl"):
                    (target / name).write_bytes((run_dir / name).read_bytes())
        before = snapshot(root)
        argv = (
            ["publish", str(run_dir), "--to", str(target)]
            if option == "--to"
            else ["report", "--results", str(target)]
        )
        status, stderr = run_main(*argv)
        assert_refused(status, stderr)
        assert snapshot(root) == before
