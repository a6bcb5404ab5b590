"""What schema/ creates, looked up by name in the catalog: the one check `schema apply` and `verify` share.

The ledger (dimbench.migrations) records which files ran, not what still stands: after someone drops a
function or a policy by hand it is unchanged, and `schema apply` trusted it. Now `schema apply` runs
every migration again when anything listed here is missing (they are idempotent) and refuses in one
line if something is still missing afterwards; `dimbench verify` reports the same list. Columns are not
listed: every query names its columns, and no migration could bring back a dropped one's data.
tests/test_inventory.py checks that a freshly applied schema has everything listed here.
"""

from __future__ import annotations

from typing import NamedTuple

import psycopg

# The harmonized schema's tables, parents before children (in public).
TABLES = (
    "workspaces",
    "workspace_members",
    "documents",
    "pdf_documents",
    "processed_documents",
    "document_chunks",
)
COMMANDS = ("select", "insert", "update", "delete")
ROLES = ("anon", "authenticated", "service_role")
FUNCTIONS = (
    "auth.uid()",  # the shim's, or hosted Supabase's own
    "private.workspace_ids(text[])",
    "private.add_creator_as_owner()",
    "public.match_document_chunks(extensions.vector,integer,uuid[],integer,boolean)",
)
# Keys, checks and foreign keys (0003, 0006, 0010), by table.
CONSTRAINTS = {
    "workspaces": ("workspaces_pkey", "workspaces_name_check"),
    "workspace_members": (
        "workspace_members_pkey",
        "workspace_members_role_check",
        "workspace_members_workspace_id_fkey",
    ),
    "documents": ("documents_pk", "documents_status_check", "documents_workspace_id_fkey"),
    "pdf_documents": ("pdf_documents_pkey", "pdf_documents_page_count_check", "pdf_documents_document_fkey"),
    "processed_documents": (
        "processed_documents_pkey",
        "processed_documents_status_check",
        "processed_documents_document_fkey",
    ),
    "document_chunks": (
        "document_chunks_pk",
        "document_chunks_chunk_index_check",
        "document_chunks_document_fkey",
    ),
}
# 0009's indexes that back no constraint; an INVALID one (a failed concurrent build) counts as missing.
INDEXES = (
    "documents_workspace_id_idx",
    "document_chunks_document_idx",
    "document_chunks_embedding_768_backfill_idx",
    "workspace_members_user_id_idx",
    "workspace_members_workspace_id_idx",
)
TRIGGERS = (("workspaces", "workspaces_add_creator_as_owner"),)
# Without these nothing can be probed (verify refuses); the rest verify reports as findings.
FOUNDATIONS = frozenset({"role", "extension", "table", "function"})


class Item(NamedTuple):
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def expected() -> list[Item]:
    """Everything listed, in the order the migrations create it."""
    items = [Item("role", role) for role in ROLES]
    items.append(Item("extension", "vector in schema extensions"))
    items += [Item("table", f"public.{t}") for t in TABLES]
    items += [Item("function", f) for f in FUNCTIONS]
    items += [Item("trigger", f"{name} on public.{t}") for t, name in TRIGGERS]
    items += [Item("row level security", f"on public.{t}") for t in TABLES]
    items += [Item("policy", f"{t}_{c} on public.{t}") for t in TABLES for c in COMMANDS]
    items += [Item("index", f"public.{name}") for name in INDEXES]
    items += [
        Item("constraint", f"{name} on public.{t}") for t, names in CONSTRAINTS.items() for name in names
    ]
    return items


# Each row: an item that exists, rendered as expected() renders it (regclass and regprocedure are
# schema-qualified under the empty search_path set first). Text, not name: a name is cut at 63 bytes.
PRESENT = """
select 'role'::text, rolname::text from pg_catalog.pg_roles where rolname = any (%(roles)s)
union all
select 'extension', e.extname || ' in schema ' || n.nspname
from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
union all
select 'table', c.oid::pg_catalog.regclass::text from pg_catalog.pg_class c
where c.relnamespace = 'public'::pg_catalog.regnamespace and c.relkind in ('r', 'p')
union all
select 'function', f from pg_catalog.unnest(%(functions)s::text[]) f
where pg_catalog.to_regprocedure(f) is not null
union all
select 'trigger', t.tgname || ' on ' || t.tgrelid::pg_catalog.regclass::text from pg_catalog.pg_trigger t
where not t.tgisinternal
union all
select 'row level security', 'on ' || c.oid::pg_catalog.regclass::text from pg_catalog.pg_class c
where c.relnamespace = 'public'::pg_catalog.regnamespace and c.relrowsecurity
union all
select 'policy', p.polname || ' on ' || p.polrelid::pg_catalog.regclass::text from pg_catalog.pg_policy p
union all
select 'index', i.indexrelid::pg_catalog.regclass::text from pg_catalog.pg_index i where i.indisvalid
union all
select 'constraint', c.conname || ' on ' || c.conrelid::pg_catalog.regclass::text
from pg_catalog.pg_constraint c
where c.connamespace = 'public'::pg_catalog.regnamespace and c.contype in ('p', 'u', 'c', 'f')
"""


def missing(conn: psycopg.Connection) -> list[Item]:
    """What the migrations create and this database lacks, in creation order."""
    with conn.transaction(force_rollback=True):
        conn.execute("set local search_path = ''")
        rows = conn.execute(PRESENT, {"roles": list(ROLES), "functions": list(FUNCTIONS)}).fetchall()
    present = {Item(kind, name) for kind, name in rows}
    return [item for item in expected() if item not in present]


def listing(items: list[Item], most: int = 3) -> str:
    """`a, b, c and 4 more`: short enough for one line."""
    shown = ", ".join(str(item) for item in items[:most])
    return shown if len(items) <= most else f"{shown} and {len(items) - most} more"
