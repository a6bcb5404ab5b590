"""Bad input to `corpus import` and `corpus embed`: one line naming the file, line and field, a non-zero
exit, no traceback, and nothing written."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dimbench import cli
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.test_realdata import rows, unit

MEMBERS = [
    {"user": "ana", "workspace": "tenant 0", "role": "owner"},
    {"user": "bo", "workspace": "tenant 1", "role": "owner"},
    {"user": "bo", "workspace": "tenant 2", "role": "viewer"},
]
QUESTION = {"id": "q1", "text": "a question", "user": "ana", "embedding_1536": unit(5, 1536)}


def dump(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in records))
    return path


def chunk_rows() -> list[dict]:
    return [{**r, "id": f"c{i}"} for i, r in enumerate(rows())]


def import_args(
    tmp: Path,
    chunks: list,
    members: list | None = None,
    questions: list | None = None,
    qrels: str | None = None,
) -> list[str]:
    args = ["corpus", "import", str(dump(tmp / "chunks.jsonl", chunks)), "--out", str(tmp / "corpus")]
    if members is not None:
        args += ["--members", str(dump(tmp / "members.jsonl", members))]
    if questions is not None:
        args += ["--queries", str(dump(tmp / "questions.jsonl", questions))]
    if qrels is not None:
        (tmp / "qrels.tsv").write_text(qrels)
        args += ["--qrels", str(tmp / "qrels.tsv")]
    return args


def edited(record: dict, **changes) -> dict:
    return {**record, **changes}


CASES = {
    "overflow": (
        lambda c: c[3]["embedding_1536"].__setitem__(7, 1e39),
        {},
        "chunks.jsonl:4: embedding_1536 has a value that overflows float32",
    ),
    "underflow": (
        lambda c: c[2]["embedding_1536"].__setitem__(0, 1e-46),
        {},
        "chunks.jsonl:3: embedding_1536 has a value that underflows float32",
    ),
    "huge integer": (
        lambda c: c[0]["embedding_1536"].__setitem__(0, 10**400),
        {},
        "chunks.jsonl:1: embedding_1536 has a value that overflows",
    ),
    "duplicate chunk id": (
        lambda c: c[5].update(id="c1"),
        {},
        "chunks.jsonl:6: id 'c1' is already the id of line 2",
    ),
    "zero prefix of a derived 768": (
        lambda c: c[1].update(embedding_1536=[0.0] * 768 + [1.0] * 768),
        {},
        "chunks.jsonl:2: embedding_1536 has only zeros in its first 768",
    ),
    "membership in an absent workspace": (
        lambda c: None,
        {"members": [*MEMBERS, {"user": "cy", "workspace": "nowhere", "role": "owner"}]},
        "members.jsonl:4: workspace 'nowhere' has no chunks",
    ),
    "unknown role": (
        lambda c: None,
        {"members": [edited(MEMBERS[0], role="superuser")]},
        "members.jsonl:1: role 'superuser'",
    ),
    "duplicate membership": (
        lambda c: None,
        {"members": [*MEMBERS, edited(MEMBERS[0], role="viewer")]},
        "members.jsonl:4: user 'ana' is already a member of workspace 'tenant 0' (line 1)",
    ),
    "question of an unknown user": (
        lambda c: None,
        {"members": MEMBERS, "questions": [edited(QUESTION, user="zed")]},
        "questions.jsonl:1: user 'zed' is in no membership",
    ),
    "question of an unknown workspace": (
        lambda c: None,
        {"members": MEMBERS, "questions": [edited(QUESTION, user=None, workspace="void")]},
        "questions.jsonl:1: workspace 'void' has no chunks",
    ),
    "question of a user outside its workspace": (
        lambda c: None,
        {"members": MEMBERS, "questions": [edited(QUESTION, workspace="tenant 1")]},
        "questions.jsonl:1: user 'ana' is not a member of workspace 'tenant 1'",
    ),
    "question naming a user with synthesized memberships": (
        lambda c: None,
        {"questions": [QUESTION]},
        "questions.jsonl:1: user 'ana' is unknown: memberships are synthesized",
    ),
    "question embedding of the wrong width": (
        lambda c: None,
        {"members": MEMBERS, "questions": [edited(QUESTION, embedding_1536=unit(1, 768))]},
        "questions.jsonl:1: embedding_1536 has 768 dimensions",
    ),
    "question embedding with NaN": (
        lambda c: None,
        {"members": MEMBERS, "questions": [edited(QUESTION, embedding_1536=[float("nan")] * 1536)]},
        "questions.jsonl:1: embedding_1536 has NaN",
    ),
    "question missing the rows' column": (
        lambda c: None,
        {"members": MEMBERS, "questions": [edited(QUESTION, embedding_1536=None)]},
        "questions.jsonl:1: embedding_1536 is missing",
    ),
    "duplicate question id": (
        lambda c: None,
        {"members": MEMBERS, "questions": [QUESTION, QUESTION]},
        "questions.jsonl:2: id 'q1' is already the id of line 1",
    ),
    "qrel of an unknown chunk": (
        lambda c: None,
        {"members": MEMBERS, "questions": [QUESTION], "qrels": "q1\tc999\t1\n"},
        "qrels.tsv:1: corpus-id 'c999' is no chunk id",
    ),
    "qrel of an unknown question": (
        lambda c: None,
        {"members": MEMBERS, "questions": [QUESTION], "qrels": "q9\tc1\t1\n"},
        "qrels.tsv:1: query-id 'q9' is no question",
    ),
    "qrel with a negative grade": (
        lambda c: None,
        {"members": MEMBERS, "questions": [QUESTION], "qrels": "q1\tc1\t-1\n"},
        "qrels.tsv:1: score '-1' must be a non-negative integer",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_naming_file_line_and_field_and_nothing_is_written(tmp_path, case):
    change, inputs, message = CASES[case]
    chunks = chunk_rows()
    change(chunks)
    args = import_args(tmp_path, chunks, inputs.get("members"), inputs.get("questions"), inputs.get("qrels"))
    assert_one_line_error(run_cli(*args), message)
    assert not (tmp_path / "corpus").exists() and not list(tmp_path.glob(".corpus*"))


def test_a_batch_size_below_one_is_refused_before_anything_is_embedded(tmp_path):
    result = run_cli("corpus", "embed", "--corpus", str(tmp_path), "--batch-size", "-1")
    assert_one_line_error(result, "--batch-size", "must be at least 1")


# --- properties: whatever is wrong with a row, the import fails cleanly ---------------------------------

BAD_NUMBERS = st.one_of(
    st.just(float("nan")),
    st.just(float("inf")),
    st.floats(min_value=3.5e38, max_value=1e300),
    st.floats(min_value=1e-300, max_value=1e-39),
    st.integers(min_value=10**39, max_value=10**400),
    st.text(max_size=3),
    st.booleans(),
    st.none().map(lambda _: [1.0]),
)
BAD_VECTORS = st.one_of(
    st.tuples(st.integers(0, 1535), BAD_NUMBERS).map(lambda p: ("put", p)),
    st.integers(0, 3000).filter(lambda n: n != 1536).map(lambda n: ("width", n)),
    st.just(("zero", None)),
    st.sampled_from(["x", 3, {"a": 1}]).map(lambda v: ("replace", v)),
)
BAD_FIELDS = st.one_of(
    st.sampled_from(["workspace", "document", "text"]).map(lambda k: ("drop", k)),
    st.tuples(
        st.sampled_from(["workspace", "document", "text", "id"]), st.sampled_from(["", "  ", 7, 0.5, []])
    ).map(lambda p: ("blank", p)),
    st.text(min_size=1, max_size=8)
    .filter(
        lambda k: (
            k not in rows()[0] and k not in ("id", "chunk_no", "title", "embedding_768", "embedding_ada")
        )
    )
    .map(lambda k: ("extra", k)),
)


def corrupt(records: list[dict], line: int, kind: str, detail) -> None:
    record = records[line]
    if kind == "put":
        index, value = detail
        record["embedding_1536"][index] = value
    elif kind == "width":
        record["embedding_1536"] = (record["embedding_1536"] * 2)[:detail]
    elif kind == "zero":
        record["embedding_1536"] = [0.0] * 1536
    elif kind == "replace":
        record["embedding_1536"] = detail
    elif kind == "drop":
        record.pop(detail)
    elif kind == "blank":
        key, value = detail
        record[key] = value
    elif kind == "extra":
        record[detail] = 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.integers(0, len(rows()) - 1), bad=st.one_of(BAD_VECTORS, BAD_FIELDS))
def test_any_invalid_row_fails_the_import_in_one_line_and_leaves_no_corpus(line, bad):
    records = chunk_rows()
    corrupt(records, line, *bad)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chunks.jsonl"
        path.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in records))
        out = Path(tmp) / "corpus"
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["corpus", "import", str(path), "--out", str(out)])
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        assert code != 0 and len(lines) == 1 and "Traceback" not in err.getvalue()
        assert f"chunks.jsonl:{line + 1}" in lines[0]
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["chunks.jsonl"]
