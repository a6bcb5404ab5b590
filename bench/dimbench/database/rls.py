"""Run statements the way PostgREST does: one transaction that first switches role and sets the claims.

PostgREST connects as `authenticator` and, for each request, runs
`select set_config('role', <role>, true), set_config('request.jwt.claims', <claims json>, true)` before
the request's own statement, all in one transaction. Both settings are transaction-local, so nothing
leaks into the next request on the same connection. The study's RLS arms and the isolation tests use
exactly this, so the latency measured includes what production pays and RLS really applies (a superuser
connection that skipped the role switch would bypass every policy).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg

SET_ROLE_AND_CLAIMS = "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)"


def claims_for(role: str, sub: uuid.UUID | str | None, extra: Mapping[str, Any] | None = None) -> str:
    """The JSON PostgREST would put in request.jwt.claims for this token."""
    claims: dict[str, Any] = {"role": role}
    if sub is not None:
        claims["sub"] = str(sub)
    claims.update(extra or {})
    return json.dumps(claims, sort_keys=True)


@contextmanager
def request(
    conn: psycopg.Connection,
    role: str,
    sub: uuid.UUID | str | None = None,
    *,
    claims: str | None = None,
    commit: bool = False,
) -> Iterator[psycopg.Connection]:
    """One PostgREST-style request: role + claims set transaction-locally; rolled back unless `commit`.

    `claims` overrides the JSON entirely (tests use it for malformed or hostile tokens).
    """
    payload = claims if claims is not None else claims_for(role, sub)
    with conn.transaction(force_rollback=not commit):
        conn.execute(SET_ROLE_AND_CLAIMS, (role, payload))
        yield conn
