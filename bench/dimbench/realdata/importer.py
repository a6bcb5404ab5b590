"""`dimbench corpus import FILE`: real chunks (and embeddings) into a corpus directory the study can load.

Everything is validated before anything is kept: rows stream into a temporary directory, which becomes
the corpus only when every input passed (an error leaves nothing behind). Besides the chunks, the team
may give its questions (`--queries`, graded by `--qrels`) and its memberships (`--members`); what it does
not give is synthesized — questions from held-out chunks (holdout.py), memberships as the generator
makes them (members.py) — and the manifest's `provenance` says which parts are whose.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dimbench.corpus import columns
from dimbench.corpus.generate import sha256
from dimbench.errors import DimbenchError
from dimbench.realdata import asks as asks_module
from dimbench.realdata import holdout, members, provenance, truth
from dimbench.realdata.rows import EMBEDDINGS, validate

IMPORT_VERSION = "import-2"  # 2: each column's ground truth from its own rows; held-out questions
COLUMN_OF = {"embedding_1536": "1536", "embedding_768": "768", "embedding_ada": "ada"}
MAX_K = 100  # hnsw.ef_search caps what one scan returns (as corpus specs have it)


def file_digest(path: Path) -> str:
    return sha256(path)[:16]


@dataclass
class Staged:
    """Every row validated, in input order: texts and vectors in staging files, the rest in memory."""

    workspaces: dict[str, int] = field(default_factory=dict)  # name -> arrival index
    docs: dict[str, int] = field(default_factory=dict)
    doc_workspace: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    row_doc: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    text_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lines: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    vectors: list[str] = field(default_factory=list)  # embedding_* keys the rows carry

    def texts(self, tmp: Path, rows: np.ndarray) -> list[str]:
        starts = np.concatenate([[0], np.cumsum(self.text_lengths)[:-1]])
        with (tmp / "stage_texts.bin").open("rb") as handle:
            out = []
            for row in rows.tolist():
                handle.seek(int(starts[row]))
                out.append(handle.read(int(self.text_lengths[row])).decode())
        return out

    def column(self, tmp: Path, key: str) -> np.ndarray:
        return np.fromfile(tmp / f"stage_{key}.f32", dtype=np.float32).reshape(-1, EMBEDDINGS[key])


def import_file(
    path: Path,
    out: Path,
    *,
    k: int = 10,
    queries_per_bucket: int = 300,
    seed: int = 0,
    queries: Path | None = None,
    qrels: Path | None = None,
    members_file: Path | None = None,
    models: dict[str, str] | None = None,
) -> Path:
    path, out = Path(path), Path(out)
    check_options(k, queries_per_bucket, queries, qrels, models or {})
    if out.exists():
        raise DimbenchError(f"{out} already exists: choose another --out or remove it")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        staged = _stage(path, tmp)
        rank = _rank_workspaces(staged)
        ws_names = {name: int(rank[i]) for name, i in staged.workspaces.items()}
        memberships = (
            members.read_members(Path(members_file), ws_names)
            if members_file
            else members.synthesize(len(ws_names), seed)
        )
        doc_ws = np.array([staged.workspaces[staged.doc_workspace[d]] for d in staged.docs])
        row_ws = rank[doc_ws[staged.row_doc]]
        if queries:
            asked = asks_module.read_queries(Path(queries), ws_names, memberships, set(staged.vectors))
            held = None
            keep = np.ones(len(row_ws), dtype=bool)
        else:
            held = holdout.hold_out(row_ws, len(ws_names), memberships, queries_per_bucket, seed)
            keep = ~np.isin(np.arange(len(row_ws)), held.rows)
        row_map, doc_offsets = _arrange(tmp, staged, rank, keep)
        np.save(tmp / "memberships.npy", memberships.rows)
        chunk_ids = {staged.ids[r]: int(row_map[r]) for r in range(len(staged.ids)) if row_map[r] >= 0}
        names = json.loads((tmp / "names.json").read_text())
        names["users"] = memberships.users
        names["chunks"] = [None] * int(keep.sum())
        for cid, row in chunk_ids.items():
            names["chunks"][row] = cid
        (tmp / "names.json").write_text(json.dumps(names, ensure_ascii=False))
        if held is not None:
            asked = _held_out_asks(tmp, staged, held, row_map, doc_offsets)
        elif qrels:
            asked.qrels = asks_module.read_qrels(Path(qrels), asked.ids, chunk_ids)
        asks_module.save(tmp, asked)
        for key in staged.vectors:
            (tmp / f"stage_{key}.f32").unlink()
        (tmp / "stage_texts.bin").unlink()
        manifest = {
            "format": 1,
            "generator_version": IMPORT_VERSION,
            "name": path.stem,
            "digest": _digest(path, queries, qrels, members_file),
            "source": path.name,
            "spec": {
                "k": k,
                "queries_per_bucket": queries_per_bucket,
                "seed": seed,
                "block_rows": 8192,
                "chunks_per_document": 0,
            },
            "assumptions": {"source": "imported data: embeddings and texts are real"},
            "calibration": None,
            "queries": {"asked_per_cell": None if queries else queries_per_bucket},
            "provenance": provenance.of_import(path, queries, qrels, members_file),
            "embedding": {
                "columns": {
                    COLUMN_OF[key]: provenance.team_column(COLUMN_OF[key], (models or {}))
                    for key in staged.vectors
                }
            },
        }
        if columns.own(tmp, "1536"):
            truth.finish(tmp, manifest)
        else:
            truth.write_manifest(tmp, manifest, queries=len(asked))
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def check_options(
    k: int, per_cell: int, queries: Path | None, qrels: Path | None, models: dict[str, str]
) -> None:
    if not 1 <= k <= MAX_K:
        raise DimbenchError(f"--k must be between 1 and {MAX_K}, got {k}")
    if per_cell < 1:
        raise DimbenchError(f"--queries-per-bucket must be at least 1, got {per_cell}")
    if qrels and not queries:
        raise DimbenchError("--qrels grades the questions of --queries FILE: give both")
    unknown = sorted(set(models) - set(columns.COLUMNS))
    if unknown:
        raise DimbenchError(f"--model {unknown[0]}=…: no such column (use 1536, 768 or ada)")


def _digest(path: Path, *more: Path | None) -> str:
    """The chunk file's digest, or — with the team's questions or memberships — of all the inputs."""
    extra = [Path(p) for p in more if p]
    if not extra:
        return file_digest(path)
    import hashlib

    return hashlib.sha256("".join(sha256(p) for p in (path, *extra)).encode()).hexdigest()[:16]


def _stage(path: Path, tmp: Path) -> Staged:
    """Validate every row; append texts and vectors (input order) to staging files."""
    staged = Staged()
    row_doc: list[int] = []
    lengths: list[int] = []
    first_id: dict[str, int] = {}
    vector_files: dict[str, Any] = {}
    with (tmp / "stage_texts.bin").open("wb") as texts:
        try:
            for row in validate(path):
                owner = staged.doc_workspace.setdefault(row.document, row.workspace)
                if owner != row.workspace:
                    raise DimbenchError(
                        f"{path.name}:{row.line}: document {row.document!r} already belongs to "
                        f"workspace {owner!r}, not {row.workspace!r}"
                    )
                if row.id is not None:
                    if row.id in first_id:
                        raise DimbenchError(
                            f"{path.name}:{row.line}: id {row.id!r} is already the id of line "
                            f"{first_id[row.id]}"
                        )
                    first_id[row.id] = row.line
                    staged.ids.append(row.id)
                staged.workspaces.setdefault(row.workspace, len(staged.workspaces))
                staged.docs.setdefault(row.document, len(staged.docs))
                if row.title:
                    staged.titles.setdefault(row.document, row.title)
                row_doc.append(staged.docs[row.document])
                staged.lines.append(row.line)
                encoded = row.text.encode()
                texts.write(encoded)
                lengths.append(len(encoded))
                for key, vector in row.embeddings.items():
                    if key not in vector_files:
                        vector_files[key] = (tmp / f"stage_{key}.f32").open("wb")
                    vector_files[key].write(vector.astype(np.float32).tobytes())
        finally:
            for handle in vector_files.values():
                handle.close()
    if not row_doc:
        raise DimbenchError(f"{path.name}: no rows to import")
    staged.row_doc = np.asarray(row_doc, dtype=np.int64)
    staged.text_lengths = np.asarray(lengths, dtype=np.int64)
    staged.vectors = sorted(vector_files)
    return staged


def _rank_workspaces(staged: Staged) -> np.ndarray:
    """Final index of each workspace (by arrival): largest first, ties by arrival."""
    doc_ws = np.array([staged.workspaces[staged.doc_workspace[d]] for d in staged.docs])
    n = len(staged.workspaces)
    ws_rows = np.bincount(doc_ws[staged.row_doc], minlength=n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), -ws_rows))] = np.arange(n)
    return rank


def _arrange(
    tmp: Path, staged: Staged, ws_rank: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lay the kept rows out workspace by workspace, document by document, as the reader expects.
    Returns each staged row's final index (-1 if held out) and the documents' chunk offsets."""
    doc_names = list(staged.docs)
    ws_names = list(staged.workspaces)
    doc_ws = np.array([staged.workspaces[staged.doc_workspace[d]] for d in doc_names])
    row_doc = staged.row_doc
    doc_new = _doc_new(staged)
    doc_order = np.argsort(doc_new)
    kept = np.flatnonzero(keep)
    row_order = kept[np.lexsort((kept, doc_new[row_doc[kept]]))]  # kept rows by new doc, then arrival
    row_map = np.full(len(row_doc), -1, dtype=np.int64)
    row_map[row_order] = np.arange(len(row_order))
    new_doc_ws = ws_rank[doc_ws][doc_order]
    per_doc = np.bincount(doc_new[row_doc[kept]], minlength=len(doc_names))
    doc_offsets = np.concatenate([[0], np.cumsum(per_doc)]).astype(np.int64)
    np.save(tmp / "ws_documents.npy", np.bincount(new_doc_ws, minlength=len(ws_names)).astype(np.int64))
    np.save(tmp / "doc_workspace.npy", new_doc_ws.astype(np.int64))
    np.save(tmp / "doc_topic.npy", np.zeros(len(doc_names), dtype=np.int64))
    np.save(tmp / "doc_offsets.npy", doc_offsets)
    names = {
        "workspaces": [ws_names[i] for i in np.argsort(ws_rank)],
        "documents": [doc_names[i] for i in doc_order],
        "titles": [staged.titles.get(doc_names[i]) for i in doc_order],
    }
    (tmp / "names.json").write_text(json.dumps(names, ensure_ascii=False))
    lengths = staged.text_lengths
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    raw = np.fromfile(tmp / "stage_texts.bin", dtype=np.uint8)
    ordered = (
        np.concatenate([raw[starts[i] : starts[i] + lengths[i]] for i in row_order])
        if len(row_order)
        else np.zeros(0, dtype=np.uint8)
    )
    np.save(tmp / "texts.bin", ordered)
    (tmp / "texts.bin.npy").rename(tmp / "texts.bin")
    np.save(tmp / "text_offsets.npy", np.concatenate([[0], np.cumsum(lengths[row_order])]).astype(np.int64))
    for key in staged.vectors:
        np.save(tmp / columns.FILES[COLUMN_OF[key]], columns.unit(staged.column(tmp, key)[row_order], key))
    return row_map, doc_offsets


def _held_out_asks(
    tmp: Path, staged: Staged, held: holdout.HeldOut, row_map: np.ndarray, doc_offsets: np.ndarray
) -> asks_module.Asks:
    """The held-out chunks as questions: their text and embeddings; graded relevant (2) are the other
    chunks of their own document, the one label a held-out chunk brings."""
    doc_new = _doc_new(staged)
    docs = doc_new[staged.row_doc[held.rows]]
    ids = [staged.ids[r] if staged.ids else f"line {staged.lines[r]}" for r in held.rows.tolist()]
    qrels = [
        (i, chunk, 2)
        for i, doc in enumerate(docs.tolist())
        for chunk in range(int(doc_offsets[doc]), int(doc_offsets[doc + 1]))
    ]
    vectors = {
        COLUMN_OF[key]: columns.unit(staged.column(tmp, key)[held.rows], f"held-out {key}")
        for key in staged.vectors
    }
    return asks_module.Asks(
        [f"held-out {cid}" for cid in ids],
        staged.texts(tmp, held.rows),
        held.users,
        held.workspaces,
        docs.astype(np.int64),
        vectors,
        np.asarray(qrels, dtype=np.int64).reshape(-1, 3),
    )


def _doc_new(staged: Staged) -> np.ndarray:
    """Each staged document's final index: by workspace rank, then arrival."""
    doc_ws = np.array([staged.workspaces[staged.doc_workspace[d]] for d in staged.docs])
    rank = _rank_workspaces(staged)
    order = np.lexsort((np.arange(len(doc_ws)), rank[doc_ws]))
    new = np.empty(len(doc_ws), dtype=np.int64)
    new[order] = np.arange(len(doc_ws))
    return new
