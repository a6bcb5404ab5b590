"""The exact privileges the API roles must hold on our objects — no more, no fewer.

Checked with has_*_privilege, so grants through PUBLIC, role membership and column-level grants all
count. Objects in `private` and `dimbench` that are not listed here must grant the API roles nothing;
other objects in `public` are a real project's own and are left alone.
"""

from __future__ import annotations

import psycopg

from dimbench.database.inventory import TABLES

API_ROLES = ("anon", "authenticated", "service_role")
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN")
COLUMN_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "REFERENCES")
DML = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
NONE: frozenset[str] = frozenset()
USAGE = frozenset({"USAGE"})
EXECUTE = frozenset({"EXECUTE"})

Expected = dict[str, dict[str, frozenset[str]]]  # object -> role -> privileges

EXPECTED_TABLES: Expected = {
    f"public.{table}": {"anon": NONE, "authenticated": DML, "service_role": DML} for table in TABLES
} | {
    "dimbench.migrations": {role: NONE for role in API_ROLES},
    "dimbench.saved_policies": {role: NONE for role in API_ROLES},
}

EXPECTED_FUNCTIONS: Expected = {
    "public.match_document_chunks(extensions.vector,integer,uuid[],integer,boolean)": {
        "anon": NONE,
        "authenticated": EXECUTE,
        "service_role": EXECUTE,
    },
    "private.workspace_ids(text[])": {"anon": NONE, "authenticated": EXECUTE, "service_role": NONE},
    "private.add_creator_as_owner()": {role: NONE for role in API_ROLES},
}

EXPECTED_SCHEMAS: Expected = {
    "public": {role: USAGE for role in API_ROLES},
    "extensions": {role: USAGE for role in API_ROLES},
    "private": {role: NONE for role in API_ROLES},  # policies call the helper by oid: no USAGE needed
    "dimbench": {role: NONE for role in API_ROLES},
}

# Schemas whose every object is ours: anything unlisted there must grant nothing.
OURS_ENTIRELY = ("private", "dimbench")

RELATIONS = """
select c.oid::pg_catalog.regclass::text, c.oid
from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = any (%s) and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
"""
FUNCTIONS = """
select p.oid::pg_catalog.regprocedure::text, p.oid
from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where n.nspname = any (%s)
  and not exists (select from pg_catalog.pg_depend d where d.objid = p.oid and d.deptype = 'e')
"""


def held(conn: psycopg.Connection) -> tuple[Expected, Expected, Expected]:
    """(tables, functions, schemas) -> role -> privileges held, for every object we judge."""
    schemas = sorted({name.split(".")[0] for name in (*EXPECTED_TABLES, *EXPECTED_FUNCTIONS)})
    table_privileges = [p for p in TABLE_PRIVILEGES if p != "MAINTAIN" or _has_maintain(conn)]
    with conn.transaction(force_rollback=True):
        conn.execute("set local search_path = ''")  # names and types rendered fully qualified
        relations = conn.execute(RELATIONS, (schemas,)).fetchall()
        functions = conn.execute(FUNCTIONS, (schemas,)).fetchall()
        tables: Expected = {}
        for name, oid in relations:
            tables[name] = {}
            for role in API_ROLES:
                have = set()
                for privilege in table_privileges:
                    row = conn.execute(
                        "select pg_catalog.has_table_privilege(%s, %s::oid, %s)"
                        " or (%s = any (%s) and pg_catalog.has_any_column_privilege(%s, %s::oid, %s))",
                        (role, oid, privilege, privilege, list(COLUMN_PRIVILEGES), role, oid, privilege),
                    ).fetchone()
                    if row and row[0]:
                        have.add(privilege)
                tables[name][role] = frozenset(have)
        routines: Expected = {}
        for name, oid in functions:
            routines[name] = {
                role: EXECUTE
                if conn.execute(
                    "select pg_catalog.has_function_privilege(%s, %s::oid, 'EXECUTE')", (role, oid)
                ).fetchone()[0]
                else NONE
                for role in API_ROLES
            }
        namespaces: Expected = {}
        for schema in EXPECTED_SCHEMAS:
            if conn.execute("select to_regnamespace(%s) is null", (schema,)).fetchone()[0]:
                continue
            namespaces[schema] = {
                role: frozenset(
                    p
                    for p in ("USAGE", "CREATE")
                    if conn.execute(
                        "select pg_catalog.has_schema_privilege(%s, %s, %s)", (role, schema, p)
                    ).fetchone()[0]
                )
                for role in API_ROLES
            }
    return tables, routines, namespaces


def _has_maintain(conn: psycopg.Connection) -> bool:
    return conn.info.server_version >= 170000  # MAINTAIN exists from PostgreSQL 17


def privilege_findings(conn: psycopg.Connection) -> list[str]:
    tables, functions, schemas = held(conn)
    found: list[str] = []
    for kind, actual, expected in (
        ("table", tables, EXPECTED_TABLES),
        ("function", functions, EXPECTED_FUNCTIONS),
        ("schema", schemas, EXPECTED_SCHEMAS),
    ):
        for name, by_role in sorted(actual.items()):
            want = expected.get(name)
            if want is None:
                if name.split(".")[0] not in OURS_ENTIRELY:
                    continue  # a real project's own object in public
                want = {role: NONE for role in API_ROLES}
            for role in API_ROLES:
                extra = sorted(by_role[role] - want[role])
                missing = sorted(want[role] - by_role[role])
                if extra:
                    found.append(f"privilege: {role} holds {', '.join(extra)} on {kind} {name}")
                if missing:
                    found.append(f"privilege: {role} lacks {', '.join(missing)} on {kind} {name}")
        for name in sorted(set(expected) - set(actual)):
            if kind != "schema" and not name.startswith("dimbench."):
                found.append(f"privilege: {kind} {name} does not exist")
    return found
