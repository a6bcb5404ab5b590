"""The policies users copy, installed on document_chunks as named variants for measurement only.

rls_seed  the seed wrote `for all using (workspace_id in (select workspace_id from workspace_members
          where user_id = auth.uid()))`: auth.uid() unwrapped (re-evaluated per row), no `to authenticated`.
rls_docs  Supabase's "RAG with permissions" guide writes `document_id in (select id from documents where
          owner_id = (select auth.uid()))`; with workspaces, membership comes through a subquery (the
          shape pgvector#776 says iterative scans do not apply to).

The arm swaps its variant in for the optimized select policy and swaps back afterwards. The optimized
definition is saved in the database first, so a run killed mid-swap is repaired by the next run
(`restore`), never by guessing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from dimbench.errors import DimbenchError

VARIANT = "document_chunks_seed_variant"
DOCS_VARIANT = "document_chunks_docs_variant"
OPTIMIZED = "document_chunks_select"
# arm -> (policy name, its definition after `create policy <name> on public.document_chunks`)
VARIANTS = {
    "rls_seed": (
        VARIANT,
        "for all using (workspace_id in (select workspace_id from public.workspace_members"
        " where user_id = auth.uid()))",
    ),
    "rls_docs": (
        DOCS_VARIANT,
        "for select to authenticated using (document_id in (select d.id from public.documents d"
        " where d.workspace_id in (select m.workspace_id from public.workspace_members m"
        " where m.user_id = (select auth.uid()))))",
    ),
}

SAVE_DDL = """
create table if not exists dimbench.saved_policies (
  name text primary key,
  qual text not null
)"""


def installed(conn: psycopg.Connection) -> bool:
    """Is any variant in place?"""
    row = conn.execute(
        "select 1 from pg_policies where schemaname = 'public' and tablename = 'document_chunks'"
        " and policyname = any (%s)",
        ([name for name, _ in VARIANTS.values()],),
    ).fetchone()
    return row is not None


def install(conn: psycopg.Connection, arm: str = "rls_seed") -> None:
    name, definition = VARIANTS[arm]
    restore(conn)  # one variant at a time
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
            sql.SQL("drop policy if exists {} on public.document_chunks").format(sql.Identifier(name))
        )
        # The definitions are this module's constants, not input.
        conn.execute(
            sql.SQL("create policy {} on public.document_chunks {}").format(
                sql.Identifier(name), sql.SQL(definition)
            )
        )


def restore(conn: psycopg.Connection) -> bool:
    """Put the optimized policy back if a variant is in place. True if anything was repaired."""
    if not installed(conn):
        return False
    with conn.transaction():
        for name, _ in VARIANTS.values():
            conn.execute(
                sql.SQL("drop policy if exists {} on public.document_chunks").format(sql.Identifier(name))
            )
        row = conn.execute(
            "select qual from dimbench.saved_policies where name = %s", (OPTIMIZED,)
        ).fetchone()
        if row is None:
            raise DimbenchError(
                "a policy variant was installed but the optimized policy was not saved: re-create it by"
                " applying schema/0007_row_level_security.sql"
            )
        # `schema apply` re-creates a missing optimized policy from 0007 (the same definition) even while
        # a variant stands: replace it.
        conn.execute(
            sql.SQL("drop policy if exists {} on public.document_chunks").format(sql.Identifier(OPTIMIZED))
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
def seed_policy(conn: psycopg.Connection, arm: str = "rls_seed") -> Iterator[None]:
    """The arm's policy variant in place for the duration (rls_seed or rls_docs)."""
    install(conn, arm)
    try:
        yield
    finally:
        restore(conn)
