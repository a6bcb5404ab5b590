"""The seed's RLS policy on document_chunks, installed as a named variant for measurement only.

The seed wrote `for all using (workspace_id in (select workspace_id from workspace_members
where user_id = auth.uid()))`: auth.uid() unwrapped (re-evaluated per row) and no `to authenticated`.
The `rls_seed` arm swaps it in for the optimized select policy and swaps back afterwards. The
optimized definition is saved in the database first, so a run killed mid-swap is repaired by the
next run (`restore`), never by guessing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from dimbench.errors import DimbenchError

VARIANT = "document_chunks_seed_variant"
OPTIMIZED = "document_chunks_select"

SAVE_DDL = """
create table if not exists dimbench.saved_policies (
  name text primary key,
  qual text not null
)"""


def installed(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "select 1 from pg_policies where schemaname = 'public' and tablename = 'document_chunks'"
        " and policyname = %s",
        (VARIANT,),
    ).fetchone()
    return row is not None


def install(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(SAVE_DDL)
        conn.execute("set local search_path = ''")  # render the policy fully qualified
        row = conn.execute(
            "select qual from pg_policies where schemaname = 'public' and tablename = 'document_chunks'"
            " and policyname = %s",
            (OPTIMIZED,),
        ).fetchone()
        if row is not None:
            conn.execute(
                "insert into dimbench.saved_policies (name, qual) values (%s, %s)"
                " on conflict (name) do update set qual = excluded.qual",
                (OPTIMIZED, row[0]),
            )
            conn.execute(
                sql.SQL("drop policy {} on public.document_chunks").format(sql.Identifier(OPTIMIZED))
            )
        conn.execute(
            sql.SQL("drop policy if exists {} on public.document_chunks").format(sql.Identifier(VARIANT))
        )
        conn.execute(
            sql.SQL(
                "create policy {} on public.document_chunks for all using ("
                " workspace_id in (select workspace_id from public.workspace_members"
                " where user_id = auth.uid()))"
            ).format(sql.Identifier(VARIANT))
        )


def restore(conn: psycopg.Connection) -> bool:
    """Put the optimized policy back if a variant is in place. True if anything was repaired."""
    if not installed(conn):
        return False
    with conn.transaction():
        conn.execute(sql.SQL("drop policy {} on public.document_chunks").format(sql.Identifier(VARIANT)))
        row = conn.execute(
            "select qual from dimbench.saved_policies where name = %s", (OPTIMIZED,)
        ).fetchone()
        if row is None:
            raise DimbenchError(
                "the seed policy variant is installed but the optimized policy was not saved:"
                " drop policy document_chunks_seed_variant and re-create the optimized one by applying"
                " schema/0007_row_level_security.sql"
            )
        # The text comes from pg_policies (the server's own rendering of our migration), not from a user.
        conn.execute(
            sql.SQL(
                "create policy {} on public.document_chunks for select to authenticated using ({})"
            ).format(sql.Identifier(OPTIMIZED), sql.SQL(row[0]))
        )
        conn.execute("delete from dimbench.saved_policies where name = %s", (OPTIMIZED,))
    return True


@contextmanager
def seed_policy(conn: psycopg.Connection) -> Iterator[None]:
    install(conn)
    try:
        yield
    finally:
        restore(conn)
