"""Generate a corpus directory from a spec: deterministic, streamed in blocks, cached by digest.

Files: manifest.json (spec, counts, statistics, sha256 of every other file), structure arrays,
emb_1536.npy (and emb_ada.npy), queries.npz with each column's query vectors and exact ground truth.
Written into a temporary directory and renamed at the end, so a corpus directory is either complete or
absent.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from dimbench import files
from dimbench.corpus import embeddings, groundtruth
from dimbench.corpus.arrays import RowWriter
from dimbench.corpus.spec import BUCKETS, Spec, bucket_of
from dimbench.corpus.structure import Structure, build_structure
from dimbench.errors import DimbenchError

# Never in a manifest's checksum list: the manifest itself and dimbench's ownership marker.
UNCHECKED = ("manifest.json", files.MARKER)
# What every corpus holds (an imported one before it is embedded: only these).
REQUIRED = ("ws_documents.npy", "doc_workspace.npy", "memberships.npy")
EMBEDDED = ("emb_1536.npy", "queries.npz")  # and once it has embeddings
# 2: queries drift toward their topic (query_topic_share). ada's questions (ada = true) are the same
# questions as 3-small's, with their own noise (ada_noise): the spec's digest carries that change.
GENERATOR_VERSION = "2"
FORMAT = 1
SCOPES = ("workspace", "all")


def corpus_dirname(spec: Spec) -> str:
    return f"{spec.name}-{spec.digest}-g{GENERATOR_VERSION}"


def latents(spec: Spec, structure: Structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Topic centres, document latents and document tail latents (one row per document)."""
    rng = np.random.default_rng([spec.seed, 2])
    L = spec.latent_dim
    topics = rng.standard_normal((spec.topics, L)).astype(np.float32) / np.sqrt(L)
    topic_tails = rng.standard_normal((spec.topics, L)).astype(np.float32) / np.sqrt(L)
    n_docs = len(structure.doc_topic)
    drift = rng.standard_normal((n_docs, L)).astype(np.float32) * (spec.topic_spread / np.sqrt(L))
    tail_drift = rng.standard_normal((n_docs, L)).astype(np.float32) * (spec.topic_spread / np.sqrt(L))
    return topics, topics[structure.doc_topic] + drift, topic_tails[structure.doc_topic] + tail_drift


def chunk_block(
    spec: Spec, proj: embeddings.Projection, docs: np.ndarray, doc_tails: np.ndarray, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Embeddings of chunks [start, stop): seeded per block, so any block can be regenerated alone."""
    rng = np.random.default_rng([spec.seed, 3, start])
    doc = np.arange(start, stop) // spec.chunks_per_document
    L = spec.latent_dim
    spread = spec.chunk_spread / np.sqrt(L)
    z = docs[doc] + rng.standard_normal((len(doc), L)).astype(np.float32) * spread
    zt = doc_tails[doc] + rng.standard_normal((len(doc), L)).astype(np.float32) * spread
    emb = embeddings.embed(proj, z, zt, spec.noise, rng)
    ada = embeddings.embed_ada(proj, z, spec.ada_noise, rng) if spec.ada else None
    return emb, ada


def plan_queries(spec: Spec, structure: Structure) -> dict[str, np.ndarray]:
    """Who asks, over what, in which size bucket: `queries_per_bucket` per (scope, bucket) if possible."""
    rng = np.random.default_rng([spec.seed, 4])
    total = structure.n_chunks
    share = structure.ws_chunks / total
    by_user = structure.user_workspaces()
    rows = []  # (user, scope, workspace or -1, bucket)
    for scope_i, scope in enumerate(SCOPES):
        candidates: dict[str, list[tuple[int, int]]] = {b: [] for b in BUCKETS}
        for user, wss in sorted(by_user.items()):
            if scope == "workspace":
                for ws in wss:
                    candidates[bucket_of(float(share[ws]))].append((user, ws))
            else:
                candidates[bucket_of(float(share[wss].sum()))].append((user, -1))
        for bucket_i, bucket in enumerate(BUCKETS):
            pool = candidates[bucket]
            if not pool:
                continue
            picks = rng.integers(0, len(pool), size=spec.queries_per_bucket)
            rows += [(pool[p][0], scope_i, pool[p][1], bucket_i) for p in picks]
    return {
        "user": np.array([r[0] for r in rows], dtype=np.int64),
        "scope": np.array([r[1] for r in rows], dtype=np.int8),
        "workspace": np.array([r[2] for r in rows], dtype=np.int64),
        "bucket": np.array([r[3] for r in rows], dtype=np.int8),
    }


def query_latents(
    spec: Spec,
    structure: Structure,
    topics: np.ndarray,
    docs: np.ndarray,
    doc_tails: np.ndarray,
    plan: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.random.Generator]:
    """What each question is about: its latent, its tail latent, its source document, and the generator
    that then embeds it. A question is about one visible document; `query_topic_share` of its latent is
    the document's topic rather than the document itself: a real question is phrased about a subject, so
    its nearest neighbours include other tenants' documents on the same subject (which is what makes
    post-filtered ANN search miss small tenants' rows)."""
    rng = np.random.default_rng([spec.seed, 5])
    by_user = structure.user_workspaces()
    ws_first_doc = np.concatenate([[0], np.cumsum(structure.ws_documents)[:-1]])
    source = np.empty(len(plan["user"]), dtype=np.int64)
    for i, (user, ws) in enumerate(zip(plan["user"], plan["workspace"], strict=True)):
        pool = [int(ws)] if ws >= 0 else by_user[int(user)]
        weights = structure.ws_documents[pool] / structure.ws_documents[pool].sum()
        chosen = pool[int(rng.choice(len(pool), p=weights))]
        source[i] = ws_first_doc[chosen] + int(rng.integers(0, structure.ws_documents[chosen]))
    L = spec.latent_dim
    spread = spec.query_spread / np.sqrt(L)
    share = spec.query_topic_share
    about = (1 - share) * docs[source] + share * topics[structure.doc_topic[source]]
    z = about + rng.standard_normal((len(source), L)).astype(np.float32) * spread
    zt = doc_tails[source] + rng.standard_normal((len(source), L)).astype(np.float32) * spread
    return z, zt, source, rng


def query_vectors(
    spec: Spec,
    structure: Structure,
    proj: embeddings.Projection,
    topics: np.ndarray,
    docs: np.ndarray,
    doc_tails: np.ndarray,
    plan: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each column's query vectors (1536, 768 = its prefix, and ada when the spec has it) and each
    question's source document. ada embeds the same question (the same latent) with its own model."""
    z, zt, source, rng = query_latents(spec, structure, topics, docs, doc_tails, plan)
    vectors = embeddings.embed(proj, z, zt, spec.noise, rng)
    # The 768 column is derived (columns.py): its queries are the 1536 ones, truncated likewise.
    asked = {"1536": vectors, "768": embeddings.shorten(vectors)}
    if spec.ada:
        asked["ada"] = embeddings.embed_ada(proj, z, spec.ada_noise, np.random.default_rng([spec.seed, 6]))
    return asked, source


def check_size(spec: Spec, where: Path) -> None:
    """Refuse, before allocating anything, a spec this machine cannot hold: the per-document arrays and
    latents in memory, the embedding files on disk."""
    import psutil

    documents = spec.chunks // spec.chunks_per_document + spec.workspaces
    memory = (
        documents * (3 * spec.latent_dim * 4 + 4 * 8)
        + spec.topics * spec.latent_dim * 4 * 2
        + spec.users * spec.max_memberships * 3 * 8
        + spec.block_rows * 1536 * 4 * 6
        + spec.queries_per_bucket * 8 * (1536 * 4 * 3 + spec.block_rows * 4 * 2)
    )
    disk = spec.chunks * 1536 * 4 * (2 if spec.ada else 1)
    available = psutil.virtual_memory().available
    if memory > available // 2:
        raise DimbenchError(
            f"corpus {spec.name}: {spec.chunks} chunks need about {memory / 1e9:.1f} GB of memory to "
            f"generate; this machine has {available / 1e9:.1f} GB available"
        )
    existing = where
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if disk > free:
        raise DimbenchError(
            f"corpus {spec.name}: {spec.chunks} chunks need {disk / 1e9:.1f} GB on disk; {existing} has "
            f"{free / 1e9:.1f} GB free"
        )


def generate(spec: Spec, out: Path, progress: bool = True) -> Path:
    """Write the corpus for `spec` into `out` (replacing nothing: `out` must not exist)."""
    from tqdm import tqdm

    started = time.perf_counter()
    check_size(spec, out.parent)
    files.clear_temporaries(out.parent, out.name)  # what a killed generate left behind
    tmp = files.marked_temporary(out.parent, out.name)
    try:
        structure = build_structure(spec)
        proj = embeddings.projection(spec)
        topics, docs, doc_tails = latents(spec, structure)
        n = structure.n_chunks
        np.save(tmp / "ws_documents.npy", structure.ws_documents)
        np.save(tmp / "doc_workspace.npy", structure.doc_workspace)
        np.save(tmp / "doc_topic.npy", structure.doc_topic)
        np.save(tmp / "memberships.npy", structure.memberships)
        emb_out = RowWriter(tmp / "emb_1536.npy", n, 1536)
        ada_out = RowWriter(tmp / "emb_ada.npy", n, 1536) if spec.ada else None
        with tqdm(total=n, desc=f"generate {spec.name}", unit="chunk", disable=not progress) as bar:
            for start in range(0, n, spec.block_rows):
                stop = min(n, start + spec.block_rows)
                block, block_ada = chunk_block(spec, proj, docs, doc_tails, start, stop)
                emb_out.write(block)
                if ada_out is not None and block_ada is not None:
                    ada_out.write(block_ada)
                bar.update(stop - start)
        emb_out.close()
        if ada_out is not None:
            ada_out.close()
        plan = plan_queries(spec, structure)
        asked, source = query_vectors(spec, structure, proj, topics, docs, doc_tails, plan)
        truth = groundtruth.exact_topk(spec.k, spec.block_rows, structure, plan, tmp, asked, progress)
        np.savez(
            tmp / "queries.npz",
            **plan,
            **{f"vector_{name}": v for name, v in asked.items()},
            source_document=source,
            **truth,
        )
        stats = groundtruth.statistics(structure, tmp, plan, truth, seed=spec.seed, users=spec.users)
        write_manifest(tmp, generated_manifest(spec, structure, plan, stats, time.perf_counter() - started))
        files.mark(tmp, "corpus")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(directory: Path, manifest: dict[str, Any], *, checksum: bool = True) -> None:
    """The one manifest writer (generated, imported and calibrated corpora): atomically, after
    recording the sha256 of every other file unless only the manifest itself changed."""
    if checksum:
        others = sorted(p for p in directory.iterdir() if p.name not in UNCHECKED)
        manifest["files"] = {p.name: sha256(p) for p in others}
    files.write_atomic(directory / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def generated_manifest(
    spec: Spec,
    structure: Structure,
    plan: dict[str, np.ndarray],
    stats: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    from dataclasses import asdict

    counts = {
        "workspaces": int(len(structure.ws_documents)),
        "users": spec.users,
        "memberships": int(len(structure.memberships)),
        "documents": int(len(structure.doc_topic)),
        "chunks": structure.n_chunks,
        "queries": int(len(plan["user"])),
    }
    return {
        "format": FORMAT,
        "generator_version": GENERATOR_VERSION,
        "name": spec.name,
        "digest": spec.digest,
        "spec": asdict(spec),
        "counts": counts,
        "statistics": stats,
        "assumptions": {
            "matryoshka_tail_share": spec.matryoshka_tail_share,
            "note": "synthetic: the share of signal only dims 768..1535 carry; sets the "
            "768-vs-1536 neighbour overlap",
            "query_topic_share": spec.query_topic_share,
            **({"ada_noise": spec.ada_noise} if spec.ada else {}),
            "query_note": "synthetic: how much of a question is about its topic (shared across tenants) "
            "rather than its own document; more makes post-filtered search miss small tenants",
        },
        "calibration": None,
        "generate_seconds": round(seconds, 2),
    }


def verify(directory: Path) -> dict[str, Any]:
    """The manifest, after checking every file against its checksum (a corrupted cache is an error).

    Every file in the directory must be listed with its checksum, and every file a corpus needs must be
    there: a file added, removed or changed is a corrupted corpus, never half-read later."""
    if not directory.is_dir():
        raise DimbenchError(f"no corpus at {directory}")
    ours = files.owned(directory, "corpus")
    fix = (
        "regenerate it with `dimbench corpus generate --force` (or import it again)"
        if ours
        else "it was not made by this version of dimbench: move it away, or import or generate it again"
    )
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        listed = manifest["files"]
        if not isinstance(manifest, dict) or not isinstance(listed, dict):
            raise TypeError("manifest.json is not an object with a files table")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        if not ours and not (directory / "manifest.json").exists():
            raise DimbenchError(f"{directory} is not a dimbench corpus (no manifest.json)") from exc
        raise DimbenchError(f"corpus {directory} is corrupted (unreadable manifest.json): {fix}") from exc
    present = {p.name for p in directory.iterdir() if p.name not in UNCHECKED}
    needed = {*REQUIRED, *(EMBEDDED if manifest.get("embedded", True) else ())}
    for problem in [
        *(f"{name} has no checksum in manifest.json" for name in sorted(present - set(listed))),
        *(f"manifest.json lists no {name}" for name in sorted(needed - set(listed))),
    ]:
        raise DimbenchError(f"corpus {directory} is corrupted ({problem}): {fix}")
    for name, digest in sorted(listed.items()):
        path = directory / name
        if not isinstance(name, str) or "/" in name or not path.is_file() or sha256(path) != digest:
            raise DimbenchError(
                f"corpus {directory} is corrupted ({name} does not match its checksum): {fix}"
            )
    return manifest
