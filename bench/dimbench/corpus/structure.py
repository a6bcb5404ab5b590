"""The tenancy structure: Zipf-sized workspaces, documents with topics, users and memberships.

Chunks are laid out workspace by workspace and document by document, so a workspace's rows are one
contiguous range: ground truth can mask by range, and the loader streams in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dimbench.corpus.spec import Spec

ROLES = ("owner", "admin", "member", "viewer")


@dataclass
class Structure:
    ws_documents: np.ndarray  # (W,) documents per workspace, largest first
    doc_workspace: np.ndarray  # (D,) workspace of each document
    doc_topic: np.ndarray  # (D,) topic of each document
    memberships: np.ndarray  # (M, 3) workspace, user, role index into ROLES
    chunks_per_document: int
    doc_chunks: np.ndarray | None = None  # (D,) chunks per document when they vary (imported corpora)

    @property
    def ws_chunks(self) -> np.ndarray:
        if self.doc_chunks is None:
            return self.ws_documents * self.chunks_per_document
        return np.bincount(
            self.doc_workspace, weights=self.doc_chunks, minlength=len(self.ws_documents)
        ).astype(np.int64)

    @property
    def ws_start(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.ws_chunks)[:-1]])

    @property
    def n_chunks(self) -> int:
        return int(self.ws_chunks.sum())

    def user_workspaces(self) -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        for ws, user, _ in self.memberships:
            found.setdefault(int(user), []).append(int(ws))
        return found


def workspace_documents(spec: Spec) -> np.ndarray:
    """Documents per workspace ∝ 1/rank^s, at least one each, summing to the spec's total."""
    total = spec.chunks // spec.chunks_per_document
    weights = 1.0 / np.arange(1, spec.workspaces + 1) ** spec.zipf_exponent
    docs = np.maximum(1, np.floor(weights / weights.sum() * total)).astype(np.int64)
    docs[0] += max(0, total - int(docs.sum()))  # the remainder goes to the largest workspace
    return docs


def build_structure(spec: Spec) -> Structure:
    rng = np.random.default_rng([spec.seed, 1])
    ws_docs = workspace_documents(spec)
    doc_ws = np.repeat(np.arange(spec.workspaces), ws_docs)
    # A workspace writes about a few topics (bigger workspaces, more of them), as real tenants do.
    doc_topic = np.empty(len(doc_ws), dtype=np.int64)
    start = 0
    for n in ws_docs:
        focus = rng.choice(spec.topics, size=min(spec.topics, 2 + int(np.log2(n + 1))), replace=False)
        doc_topic[start : start + n] = rng.choice(focus, size=n)
        start += n
    members = synthesize_memberships(rng, spec.workspaces, spec.users, spec.max_memberships)
    return Structure(
        ws_docs,
        doc_ws.astype(np.int64),
        doc_topic,
        members,
        spec.chunks_per_document,
    )


def synthesize_memberships(
    rng: np.random.Generator, workspaces: int, users: int, max_memberships: int
) -> np.ndarray:
    """(M, 3) workspace, user, role: user w owns workspace w (every workspace has an owner), and every
    user belongs to 1..max_memberships workspaces, the extra ones as admin, member or viewer."""
    members = []
    for ws in range(workspaces):
        members.append((ws, ws, 0))
    for user in range(users):
        have = {user} if user < workspaces else set()  # owners own the workspace of their index
        want = int(rng.integers(1, max_memberships + 1))
        while len(have) < want:
            ws = int(rng.integers(0, workspaces))
            if ws not in have:
                have.add(ws)
                members.append((ws, user, int(rng.choice([1, 2, 3], p=[0.1, 0.6, 0.3]))))
    return np.asarray(members, dtype=np.int64)
