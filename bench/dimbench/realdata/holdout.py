"""Questions from held-out chunks, when the team gives no query file.

A held-out chunk leaves the searchable rows (it is neither loaded nor in any ground truth), and its text
and embeddings become a question about its workspace: never a stored vector asked for itself, whose
nearest neighbour would be itself. Each (scope, bucket) cell gets up to `per_cell` questions, taken round
robin over that bucket's workspaces (or users), so many tenants ask; a workspace keeps at least half of
its rows. Buckets are planned on the rows before holding out; truth.py files each question under the
bucket of the corpus as loaded, and the manifest says how many each cell got.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dimbench.corpus.spec import BUCKETS, bucket_of
from dimbench.realdata.members import Memberships


@dataclass
class HeldOut:
    rows: np.ndarray  # (Q,) staged row of each question (a row may serve in both scopes)
    users: np.ndarray  # (Q,)
    workspaces: np.ndarray  # (Q,) the workspace searched, or -1 for all of the user's


class _Pool:
    """Rows a workspace can still give up (at most half of them), in a seeded random order."""

    def __init__(self, row_ws: np.ndarray, n_ws: int, rng: np.random.Generator) -> None:
        order = rng.permutation(len(row_ws))
        self.free: list[list[int]] = [[] for _ in range(n_ws)]
        for row in order.tolist():
            self.free[int(row_ws[row])].append(row)
        self.room = [len(rows) // 2 for rows in self.free]
        self.taken: list[list[int]] = [[] for _ in range(n_ws)]

    def take(self, ws: int) -> int | None:
        if self.room[ws] == 0:
            return None
        self.room[ws] -= 1
        row = self.free[ws].pop()
        self.taken[ws].append(row)
        return row


def hold_out(row_ws: np.ndarray, n_ws: int, members: Memberships, per_cell: int, seed: int) -> HeldOut:
    rng = np.random.default_rng([seed, 8])
    pool = _Pool(row_ws, n_ws, rng)
    size = np.bincount(row_ws, minlength=n_ws)
    share = size / max(1, len(row_ws))
    of_ws = members.by_workspace()
    asks: list[tuple[int, int, int]] = []
    for bucket in BUCKETS:  # one workspace: any of its members asks
        wss = [ws for ws in rng.permutation(n_ws).tolist() if bucket_of(float(share[ws])) == bucket]
        wss = [ws for ws in wss if ws in of_ws]
        for row, ws in _round_robin(wss, per_cell, lambda ws: pool.take(ws)):
            asks.append((row, int(rng.choice(of_ws[ws])), ws))
    of_user = members.by_user()
    for bucket in BUCKETS:  # all of a user's workspaces: a question about any of them
        users = [
            u
            for u in rng.permutation(sorted(of_user)).tolist()
            if bucket_of(float(share[of_user[u]].sum())) == bucket
        ]
        used: set[int] = set()

        def question(user: int, used: set[int] = used) -> int | None:
            for ws in of_user[user]:  # a chunk already held out, else a new one
                for row in pool.taken[ws]:
                    if row not in used:
                        used.add(row)
                        return row
            for ws in of_user[user]:
                row = pool.take(ws)
                if row is not None:
                    used.add(row)
                    return row
            return None

        for row, user in _round_robin(users, per_cell, question):
            asks.append((row, user, -1))
    table = np.asarray(asks, dtype=np.int64).reshape(-1, 3)
    return HeldOut(table[:, 0], table[:, 1], table[:, 2])


def _round_robin(keys: list[int], wanted: int, draw) -> list[tuple[int, int]]:
    """(drawn, key) pairs, one per key per round, until `wanted` or every key is exhausted."""
    out: list[tuple[int, int]] = []
    live = list(keys)
    while live and len(out) < wanted:
        still = []
        for key in live:
            if len(out) == wanted:
                break
            got = draw(key)
            if got is not None:
                out.append((got, key))
                still.append(key)
        live = still
    return out
