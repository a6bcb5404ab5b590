"""Who belongs to which workspace: the team's `--members FILE`, or memberships synthesized as the
generator makes them (users in 1..3 workspaces, every workspace with an owner, all four roles).

A membership file has one record per line (JSONL or Parquet): `user`, `workspace`, `role`, with role one
of owner/admin/member/viewer, as `workspace_members` holds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dimbench.corpus.structure import ROLES, synthesize_memberships
from dimbench.errors import DimbenchError
from dimbench.realdata.rows import check_record, read_raw

FIELDS = ("user", "workspace", "role")
USERS_PER_WORKSPACE = 2  # synthesized: as the shipped specs have it (users = 2 × workspaces)
MAX_MEMBERSHIPS = 3


@dataclass
class Memberships:
    rows: np.ndarray  # (M, 3) workspace, user, role index into ROLES (workspace in the final order)
    users: list[str] | None  # the team's user names, by index; None when synthesized
    source: str | None  # the file they came from; None when synthesized

    @property
    def n_users(self) -> int:
        return int(self.rows[:, 1].max()) + 1 if len(self.rows) else 0

    def by_user(self) -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        for ws, user, _ in self.rows.tolist():
            found.setdefault(user, []).append(ws)
        return found

    def by_workspace(self) -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        for ws, user, _ in self.rows.tolist():
            found.setdefault(ws, []).append(user)
        return found


def read_members(path: Path, workspaces: dict[str, int]) -> Memberships:
    """The file's memberships, every line checked; `workspaces` maps names to final indices."""
    users: dict[str, int] = {}
    seen: dict[tuple[int, int], int] = {}
    rows = []
    for number, record in read_raw(path):
        at = f"{path.name}:{number}"
        check_record(record, at, FIELDS, ())
        if record["workspace"] not in workspaces:
            raise DimbenchError(
                f"{at}: workspace {record['workspace']!r} has no chunks in the import (no such workspace)"
            )
        if record["role"] not in ROLES:
            raise DimbenchError(f"{at}: role {record['role']!r} is not one of {', '.join(ROLES)}")
        ws = workspaces[record["workspace"]]
        user = users.setdefault(record["user"], len(users))
        if (ws, user) in seen:
            raise DimbenchError(
                f"{at}: user {record['user']!r} is already a member of workspace {record['workspace']!r} "
                f"(line {seen[(ws, user)]})"
            )
        seen[(ws, user)] = number
        rows.append((ws, user, ROLES.index(record["role"])))
    if not rows:
        raise DimbenchError(f"{path.name}: no memberships")
    return Memberships(np.asarray(rows, dtype=np.int64), list(users), path.name)


def synthesize(n_workspaces: int, seed: int) -> Memberships:
    rng = np.random.default_rng([seed, 1])
    rows = synthesize_memberships(
        rng, n_workspaces, USERS_PER_WORKSPACE * n_workspaces, min(MAX_MEMBERSHIPS, n_workspaces)
    )
    return Memberships(rows, None, None)
