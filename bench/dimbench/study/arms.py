"""The access arms (dimbench.vocabulary.ACCESS_ARMS), each run as production would run it: one
PostgREST-style request per query.

Every arm calls the design's search function (public.match_document_chunks for the shared design), as
the apps do, so the function's own cost is the same in every arm and only the access design differs.
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from dimbench.database.rls import claims_for
from dimbench.errors import DimbenchError
from dimbench.study.configs import Arm, Build
from dimbench.study.designs.base import search_function
from dimbench.vocabulary import ARM_ROLE, FILTERED

__all__ = ["ARM_ROLE", "FILTERED", "Answer", "ask", "check_canary", "check_visible", "query_vector"]

SEARCH = "select id, workspace_id, 1 - similarity from {}(%s, %s, %s, %s, %s)"
# PostgREST's request preamble: role and claims, plus the role's own statement_timeout (PostgREST applies
# an impersonated role's settings per request; a SET ROLE alone would not), all transaction-local.
PREAMBLE = (
    "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true),"
    " set_config('statement_timeout', coalesce(%s, current_setting('statement_timeout')), true)"
)
ROLE_TIMEOUT = """
select r.rolname, split_part(c, '=', 2)
from pg_db_role_setting s
join pg_roles r on r.oid = s.setrole
cross join unnest(s.setconfig) c
where c like 'statement_timeout=%' and s.setdatabase in (0, (select oid from pg_database
  where datname = current_database()))
order by s.setdatabase  -- a database-specific setting overrides the cluster-wide one
"""


class IsolationBreach(DimbenchError):
    """An RLS arm returned a row its user may not see, or the canary saw anything: the run is void."""


@dataclass
class Answer:
    ids: list[uuid.UUID]
    workspaces: list[uuid.UUID]
    distances: list[float]
    latency_ns: int
    failed: bool = False  # cancelled by the role's statement_timeout: counted, recall 0, never dropped


def role_timeouts(conn: psycopg.Connection) -> dict[str, str]:
    """statement_timeout per role as the server has it (ALTER ROLE … SET), read once per connection."""
    if conn not in _TIMEOUTS:
        _TIMEOUTS[conn] = dict(conn.execute(ROLE_TIMEOUT).fetchall())
    return _TIMEOUTS[conn]


_TIMEOUTS: weakref.WeakKeyDictionary[psycopg.Connection, dict[str, str]] = weakref.WeakKeyDictionary()


def query_vector(query: Any, build: Build) -> np.ndarray:
    """The vector the app would send for this column: a StudyQuery's own vector for the column's dim
    (the corpus's query vectors of that column), else — for a bare 1536 array, or a query without one —
    768 = the renormalized Matryoshka prefix of its 1536."""
    own = getattr(query, "vectors", {}).get(build.embedding)
    if own is not None:
        return np.asarray(own, dtype=np.float32)
    if build.embedding == "ada":  # ada-002's questions are its own model's: never 3-small's vector
        raise DimbenchError(f"{build.column_type}: the query carries no ada-002 vector")
    vector_1536 = getattr(query, "vector_1536", query)
    if build.dim == 768:
        prefix = np.asarray(vector_1536[:768], dtype=np.float32)
        return prefix / np.linalg.norm(prefix)
    return np.asarray(vector_1536, dtype=np.float32)


def ask(
    conn: psycopg.Connection,
    arm: Arm,
    vector: np.ndarray,
    user: uuid.UUID | None,
    workspaces: Sequence[uuid.UUID] | None,
) -> Answer:
    """One request through the arm's design's search function, timed client-side from BEGIN to COMMIT
    (what the app waits for).

    It runs under the role's statement_timeout, as production does; a request the server cancels for
    it comes back as a failed answer (no rows), not as an exception.
    """
    build = arm.build
    role = arm.role or ARM_ROLE[arm.access]
    claims = claims_for(role, user if role == "authenticated" else None)
    filter_ids = list(workspaces) if FILTERED[arm.access] and workspaces is not None else None
    params = (vector, arm.k, filter_ids, build.dim, build.vector_type == "halfvec")
    timeout = role_timeouts(conn).get(role)
    start = time.perf_counter_ns()
    try:
        with conn.transaction():
            conn.execute(PREAMBLE, (role, claims, timeout), prepare=True)
            statement = sql.SQL(SEARCH).format(search_function(arm.design, arm.build))
            rows = conn.execute(statement, params, prepare=True, binary=True).fetchall()
    except psycopg.errors.QueryCanceled as exc:
        if "statement timeout" not in (exc.diag.message_primary or ""):
            # cancelled by someone else (pg_cancel_backend, a server shutdown): not a request the
            # timeout failed, so not a measurement (on Ctrl-C psycopg raises KeyboardInterrupt itself)
            raise
        return Answer([], [], [], time.perf_counter_ns() - start, failed=True)
    elapsed = time.perf_counter_ns() - start
    return Answer([r[0] for r in rows], [r[1] for r in rows], [float(r[2]) for r in rows], elapsed)


def check_visible(answer: Answer, allowed: set[uuid.UUID], access: str, user: uuid.UUID | None) -> None:
    """Fail the run loudly if any row lies outside what this user (and filter) may see."""
    foreign = [ws for ws in answer.workspaces if ws not in allowed]
    if foreign:
        raise IsolationBreach(
            f"isolation breach: arm {access} returned {len(foreign)} row(s) of workspace {foreign[0]} "
            f"to user {user}, who may not see it — the run is void"
        )


def check_canary(
    conn: psycopg.Connection,
    arm: Arm,
    vector: np.ndarray,
    canary: uuid.UUID,
    someone_elses: Sequence[uuid.UUID],
) -> None:
    """A user with no membership must get nothing; proves the arm really ran under RLS.

    Filtered arms filter on `someone_elses` (real, populated workspaces), so only RLS stands between
    the canary and their rows.
    """
    if ARM_ROLE[arm.access] != "authenticated":
        return
    answer = ask(conn, arm, vector, canary, someone_elses)
    if answer.ids:
        raise IsolationBreach(
            f"isolation breach: the canary user (no memberships) got {len(answer.ids)} row(s) in arm "
            f"{arm.access} — RLS is not in force (superuser? policy dropped?); the run is void"
        )
