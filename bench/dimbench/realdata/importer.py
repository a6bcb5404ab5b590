"""`dimbench corpus import FILE`: real chunks (and embeddings) into a corpus directory the study can load.

Everything is validated before anything is kept: rows stream into a temporary directory, which becomes
the corpus only when the whole file passed (an error leaves nothing behind). Imported corpora have one
owner per workspace and, once embedded, queries drawn from their own chunks with exact ground truth.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from dimbench.corpus import embeddings as emb_ops
from dimbench.corpus import generate, groundtruth
from dimbench.corpus.arrays import RowReader
from dimbench.corpus.generate import sha256
from dimbench.corpus.spec import BUCKETS, bucket_of
from dimbench.corpus.structure import Structure
from dimbench.errors import DimbenchError
from dimbench.realdata.rows import EMBEDDINGS, validate

IMPORT_VERSION = "import-1"
ARRAY_FILES = {
    "embedding_1536": "emb_1536.npy",
    "embedding_768": "emb_768.npy",
    "embedding_ada": "emb_ada.npy",
}


def file_digest(path: Path) -> str:
    return sha256(path)[:16]


def import_file(path: Path, out: Path, *, k: int = 10, queries_per_bucket: int = 20, seed: int = 0) -> Path:
    path = Path(path)
    out = Path(out)
    if out.exists():
        raise DimbenchError(f"{out} already exists: choose another --out or remove it")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        keys = _stage(path, tmp)
        _arrange(tmp, keys)
        manifest = {
            "format": 1,
            "generator_version": IMPORT_VERSION,
            "name": path.stem,
            "digest": file_digest(path),
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
        }
        if (tmp / "emb_1536.npy").exists():
            finish(tmp, manifest)
        else:
            write_manifest(tmp, manifest, queries=0)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _stage(path: Path, tmp: Path) -> dict[str, Any]:
    """Validate every row; append texts and vectors (input order) to staging files."""
    doc_workspace: dict[str, str] = {}
    workspaces: dict[str, int] = {}
    docs: dict[str, int] = {}
    titles: dict[str, str] = {}
    row_doc: list[int] = []
    vector_files: dict[str, Any] = {}
    text_lengths: list[int] = []
    with (tmp / "stage_texts.bin").open("wb") as texts:
        for row in validate(path):
            owner = doc_workspace.setdefault(row.document, row.workspace)
            if owner != row.workspace:
                raise DimbenchError(
                    f"{path.name}:{row.line}: document {row.document!r} already belongs to "
                    f"workspace {owner!r}, not {row.workspace!r}"
                )
            workspaces.setdefault(row.workspace, len(workspaces))
            docs.setdefault(row.document, len(docs))
            if row.title:
                titles.setdefault(row.document, row.title)
            row_doc.append(docs[row.document])
            encoded = row.text.encode()
            texts.write(encoded)
            text_lengths.append(len(encoded))
            for key, vector in row.embeddings.items():
                if key not in vector_files:
                    vector_files[key] = (tmp / f"stage_{key}.f32").open("wb")
                vector_files[key].write(np.asarray(vector, dtype=np.float32).tobytes())
    for handle in vector_files.values():
        handle.close()
    if not row_doc:
        raise DimbenchError(f"{path.name}: no rows to import")
    return {
        "workspaces": workspaces,
        "docs": docs,
        "doc_workspace": doc_workspace,
        "row_doc": np.asarray(row_doc),
        "text_lengths": np.asarray(text_lengths, dtype=np.int64),
        "vectors": sorted(vector_files),
        "titles": titles,
    }


def _arrange(tmp: Path, keys: dict[str, Any]) -> None:
    """Lay rows out workspace by workspace (largest first), document by document, as the reader expects."""
    doc_names = list(keys["docs"])
    ws_names = list(keys["workspaces"])
    doc_ws = np.array([keys["workspaces"][keys["doc_workspace"][d]] for d in doc_names])
    row_doc = keys["row_doc"]
    ws_rows = np.bincount(doc_ws[row_doc], minlength=len(ws_names))
    ws_rank = np.empty(len(ws_names), dtype=np.int64)
    ws_rank[np.lexsort((np.arange(len(ws_names)), -ws_rows))] = np.arange(len(ws_names))
    doc_order = np.lexsort(
        (np.arange(len(doc_names)), ws_rank[doc_ws])
    )  # docs by workspace rank, then arrival
    doc_new = np.empty(len(doc_names), dtype=np.int64)
    doc_new[doc_order] = np.arange(len(doc_names))
    row_order = np.lexsort((np.arange(len(row_doc)), doc_new[row_doc]))  # rows by new doc, then arrival
    new_doc_ws = ws_rank[doc_ws][doc_order]
    per_doc = np.bincount(doc_new[row_doc], minlength=len(doc_names))
    np.save(tmp / "ws_documents.npy", np.bincount(new_doc_ws, minlength=len(ws_names)).astype(np.int64))
    np.save(tmp / "doc_workspace.npy", new_doc_ws.astype(np.int64))
    np.save(tmp / "doc_topic.npy", np.zeros(len(doc_names), dtype=np.int64))
    np.save(tmp / "doc_offsets.npy", np.concatenate([[0], np.cumsum(per_doc)]).astype(np.int64))
    owners = np.arange(len(ws_names), dtype=np.int64)
    np.save(tmp / "memberships.npy", np.stack([owners, owners, np.zeros_like(owners)], axis=1))
    names = {
        "workspaces": [ws_names[i] for i in np.argsort(ws_rank)],
        "documents": [doc_names[i] for i in doc_order],
        "titles": [keys["titles"].get(doc_names[i]) for i in doc_order],
    }
    (tmp / "names.json").write_text(json.dumps(names, ensure_ascii=False))
    lengths = keys["text_lengths"]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    staged = np.fromfile(tmp / "stage_texts.bin", dtype=np.uint8)
    ordered = (
        np.concatenate([staged[starts[i] : starts[i] + lengths[i]] for i in row_order])
        if len(staged)
        else staged
    )
    np.save(tmp / "texts.bin", ordered)
    (tmp / "texts.bin.npy").rename(tmp / "texts.bin")
    np.save(tmp / "text_offsets.npy", np.concatenate([[0], np.cumsum(lengths[row_order])]).astype(np.int64))
    (tmp / "stage_texts.bin").unlink()
    for key in keys["vectors"]:
        dim = EMBEDDINGS[key]
        staged_vectors = np.fromfile(tmp / f"stage_{key}.f32", dtype=np.float32).reshape(-1, dim)
        np.save(tmp / ARRAY_FILES[key], emb_ops.normalize(staged_vectors[row_order]))
        (tmp / f"stage_{key}.f32").unlink()


def structure_of(directory: Path) -> Structure:
    offsets = np.load(directory / "doc_offsets.npy")
    return Structure(
        np.load(directory / "ws_documents.npy"),
        np.load(directory / "doc_workspace.npy"),
        np.load(directory / "doc_topic.npy"),
        np.load(directory / "memberships.npy"),
        0,
        doc_chunks=np.diff(offsets),
    )


def finish(directory: Path, manifest: dict[str, Any]) -> None:
    """Queries drawn from the corpus's own chunks, exact ground truth, statistics, manifest."""
    spec = manifest["spec"]
    structure = structure_of(directory)
    rng = np.random.default_rng(spec["seed"])
    share = structure.ws_chunks / structure.n_chunks
    starts = structure.ws_start
    emb = RowReader(directory / "emb_1536.npy")
    rows = []
    for scope_i in (0, 1):  # every user owns one workspace: "all" is that workspace too
        for bucket_i, bucket in enumerate(BUCKETS):
            pool = [ws for ws in range(len(share)) if bucket_of(float(share[ws])) == bucket]
            for ws in rng.choice(pool, size=spec["queries_per_bucket"]) if pool else []:
                chunk = int(starts[ws] + rng.integers(0, structure.ws_chunks[ws]))
                rows.append((int(ws), scope_i, int(ws) if scope_i == 0 else -1, bucket_i, chunk))
    plan = {
        "user": np.array([r[0] for r in rows], dtype=np.int64),
        "scope": np.array([r[1] for r in rows], dtype=np.int8),
        "workspace": np.array([r[2] for r in rows], dtype=np.int64),
        "bucket": np.array([r[3] for r in rows], dtype=np.int8),
    }
    source_chunk = np.array([r[4] for r in rows], dtype=np.int64)
    vectors = emb.take(source_chunk) if rows else np.zeros((0, 1536), dtype=np.float32)
    offsets = np.load(directory / "doc_offsets.npy")
    source_doc = np.searchsorted(offsets, source_chunk, side="right") - 1
    ada = RowReader(directory / "emb_ada.npy") if (directory / "emb_ada.npy").exists() else None
    ada_vectors = ada.take(source_chunk) if ada is not None else None
    ns = SimpleNamespace(
        k=spec["k"],
        block_rows=spec["block_rows"],
        seed=spec["seed"],
        ada=ada is not None,
        users=len(structure.ws_documents),
    )
    truth = groundtruth.exact_topk(ns, structure, emb, ada, plan, vectors, ada_vectors, progress=False)  # type: ignore[arg-type]
    np.savez(directory / "queries.npz", **plan, vector=vectors, source_document=source_doc, **truth)
    manifest["statistics"] = groundtruth.statistics(ns, structure, directory, plan, truth)  # type: ignore[arg-type]
    write_manifest(directory, manifest, queries=len(rows))


def write_manifest(directory: Path, manifest: dict[str, Any], queries: int) -> None:
    """Counts of an imported corpus, then the one manifest writer."""
    structure = structure_of(directory)
    manifest["counts"] = {
        "workspaces": int(len(structure.ws_documents)),
        "users": int(len(structure.ws_documents)),
        "memberships": int(len(structure.memberships)),
        "documents": int(len(structure.doc_topic)),
        "chunks": structure.n_chunks,
        "queries": queries,
    }
    manifest["embedded"] = (directory / "emb_1536.npy").exists()
    generate.write_manifest(directory, manifest)
