"""The questions of an imported corpus before ground truth: the team's `--queries FILE` (and `--qrels`),
or held-out chunks (holdout.py). Stored in the corpus as asks.json, asks.npz and ask_emb_<column>.npy;
truth.py turns them into queries.npz once every column is embedded.

Query file (JSONL or Parquet), one question per line:
  id         required, unique
  text       the question (required when the corpus is to be embedded by `dimbench corpus embed`)
  user       who asks (a user of `--members FILE`); with no workspace, over all of that user's workspaces
  workspace  the one workspace searched (with no user, one of its members asks)
  embedding_1536 / embedding_768 / embedding_ada
             exactly the embedding fields the chunk rows carry: a question must be embedded by the same
             model as the rows it searches
Qrels file: BEIR's qrels TSV, `query-id<TAB>corpus-id<TAB>score` (header line optional), the chunk named
by the rows' `id` field, the score a non-negative integer grade; used for nDCG@10.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dimbench.corpus import columns
from dimbench.errors import DimbenchError
from dimbench.realdata.members import Memberships
from dimbench.realdata.rows import EMBEDDINGS, check_record, read_raw, vectors_of

FIELDS = ("id", "text", "user", "workspace", *EMBEDDINGS)
COLUMN_OF = {"embedding_1536": "1536", "embedding_768": "768", "embedding_ada": "ada"}


@dataclass
class Asks:
    ids: list[str]
    texts: list[str | None]
    users: np.ndarray  # (Q,) user index
    workspaces: np.ndarray  # (Q,) the one workspace searched, or -1: all of the user's
    source_documents: np.ndarray  # (Q,) the document a held-out question came from, or -1
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # column -> (Q, width), unit rows
    qrels: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))  # ask, chunk, grade

    def __len__(self) -> int:
        return len(self.ids)


def read_queries(
    path: Path,
    workspaces: dict[str, int],
    members: Memberships,
    row_embeddings: set[str],
) -> Asks:
    """The file's questions, every line checked against the import's workspaces, users and columns."""
    user_index = {name: i for i, name in enumerate(members.users or [])}
    of_user = {u: set(ws) for u, ws in members.by_user().items()}
    of_workspace = members.by_workspace()
    ids: dict[str, int] = {}
    texts, users, targets = [], [], []
    vectors: dict[str, list[np.ndarray]] = {COLUMN_OF[key]: [] for key in row_embeddings}
    for number, record in read_raw(path):
        at = f"{path.name}:{number}"
        check_record(record, at, ("id",), FIELDS, strings=("text", "user", "workspace"))
        qid = record["id"]
        if qid in ids:
            raise DimbenchError(f"{at}: id {qid!r} is already the id of line {ids[qid]}")
        ids[qid] = number
        given = vectors_of(record, at)
        if set(given) != row_embeddings:
            wrong = sorted(set(given) ^ row_embeddings)[0]
            state = "missing" if wrong in row_embeddings else "not carried by the chunk rows"
            raise DimbenchError(
                f"{at}: {wrong} is {state}: a question carries exactly the chunk rows' embedding fields"
            )
        if not row_embeddings and record.get("text") is None:
            raise DimbenchError(
                f"{at}: text is required: the rows carry no embeddings, so `dimbench corpus embed` embeds "
                "the questions from their text"
            )
        user, workspace = asker(record, at, workspaces, members, user_index, of_user, of_workspace)
        texts.append(record.get("text"))
        users.append(user)
        targets.append(workspace)
        for key, vector in given.items():
            vectors[COLUMN_OF[key]].append(vector)
    if not ids:
        raise DimbenchError(f"{path.name}: no questions")
    return Asks(
        list(ids),
        texts,
        np.asarray(users, dtype=np.int64),
        np.asarray(targets, dtype=np.int64),
        np.full(len(ids), -1, dtype=np.int64),
        {name: columns.unit(np.stack(vs), f"{path.name}: embedding_{name}") for name, vs in vectors.items()},
    )


def asker(
    record: dict,
    at: str,
    workspaces: dict[str, int],
    members: Memberships,
    user_index: dict[str, int],
    of_user: dict[int, set[int]],
    of_workspace: dict[int, list[int]],
) -> tuple[int, int]:
    """(user, workspace or -1) of one question, checked."""
    user_name, ws_name = record.get("user"), record.get("workspace")
    if user_name is None and ws_name is None:
        raise DimbenchError(f"{at}: a question names its user, its workspace or both")
    if ws_name is not None and ws_name not in workspaces:
        raise DimbenchError(f"{at}: workspace {ws_name!r} has no chunks in the import (no such workspace)")
    workspace = workspaces[ws_name] if ws_name is not None else -1
    if user_name is None:
        if workspace not in of_workspace:
            raise DimbenchError(f"{at}: workspace {ws_name!r} has no member to ask the question")
        return of_workspace[workspace][0], workspace
    if members.users is None:
        raise DimbenchError(
            f"{at}: user {user_name!r} is unknown: memberships are synthesized (give --members FILE, "
            "or name only the workspace)"
        )
    if user_name not in user_index:
        raise DimbenchError(f"{at}: user {user_name!r} is in no membership of --members")
    user = user_index[user_name]
    if workspace >= 0 and workspace not in of_user[user]:
        raise DimbenchError(f"{at}: user {user_name!r} is not a member of workspace {ws_name!r}")
    return user, workspace


def read_qrels(path: Path, query_ids: list[str], chunk_ids: dict[str, int]) -> np.ndarray:
    """(R, 3) ask index, chunk index, grade from a BEIR qrels TSV, every line checked."""
    if not path.is_file():
        raise DimbenchError(f"no qrels file at {path}")
    if not chunk_ids:
        raise DimbenchError(f"{path.name}: qrels name chunks by id, but the chunk rows carry no id field")
    asks = {qid: i for i, qid in enumerate(query_ids)}
    seen: dict[tuple[int, int], int] = {}
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DimbenchError(f"{path.name}: not UTF-8 text") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or (number == 1 and line.split("\t")[0] == "query-id"):
            continue
        at = f"{path.name}:{number}"
        parts = line.split("\t")
        if len(parts) != 3:
            raise DimbenchError(f"{at}: expected query-id, corpus-id and score separated by tabs")
        qid, cid, grade = (p.strip() for p in parts)
        if qid not in asks:
            raise DimbenchError(f"{at}: query-id {qid!r} is no question of --queries")
        if cid not in chunk_ids:
            raise DimbenchError(f"{at}: corpus-id {cid!r} is no chunk id of the import")
        if not grade.isdigit():
            raise DimbenchError(f"{at}: score {grade!r} must be a non-negative integer grade")
        key = (asks[qid], chunk_ids[cid])
        if key in seen:
            raise DimbenchError(f"{at}: ({qid!r}, {cid!r}) is already graded on line {seen[key]}")
        seen[key] = number
        rows.append((*key, int(grade)))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def save(directory: Path, asks: Asks) -> None:
    (directory / "asks.json").write_text(
        json.dumps({"ids": asks.ids, "texts": asks.texts}, ensure_ascii=False)
    )
    np.savez(
        directory / "asks.npz",
        user=asks.users,
        workspace=asks.workspaces,
        source_document=asks.source_documents,
        qrels=asks.qrels,
    )
    for name, vectors in asks.vectors.items():
        np.save(directory / columns.QUERY_FILES[name], vectors)


def load(directory: Path) -> Asks:
    names = json.loads((directory / "asks.json").read_text())
    with np.load(directory / "asks.npz") as data:
        arrays = {key: data[key] for key in data.files}
    vectors = {
        name: np.load(directory / file)
        for name, file in columns.QUERY_FILES.items()
        if (directory / file).exists()
    }
    return Asks(
        names["ids"],
        names["texts"],
        arrays["user"],
        arrays["workspace"],
        arrays["source_document"],
        vectors,
        arrays["qrels"],
    )
