"""Supabase's database linter (splinter) checks that apply to what this project creates, written as
catalog queries over every schema but Supabase's own. A finding is one offending object, by name.

0011 function_search_path_mutable, 0003 auth_rls_initplan, 0006 multiple_permissive_policies,
0013 rls_disabled_in_public (here also: a table of tenant rows in another schema that the API roles can
read), 0028/0029 security definer functions executable by the API roles (private is not exposed),
0001 unindexed_foreign_keys.
"""

from __future__ import annotations

import psycopg

SKIP = "('pg_catalog', 'information_schema', 'pg_toast', 'auth', 'extensions')"  # Supabase's, not ours

CHECKS = {
    "function_search_path_mutable": f"""
        select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        left join pg_depend d on d.objid = p.oid and d.deptype = 'e'
        where n.nspname not in {SKIP} and d.objid is null
          and not exists (select from unnest(coalesce(p.proconfig, '{{}}')) c
                          where c like 'search_path=%')""",
    "auth_rls_initplan": r"""
        select schemaname || '.' || tablename || ' ' || policyname from pg_policies
        where (qual ~ 'auth\.(uid|jwt|role|email)\(\)'
               and lower(qual) !~ 'select\s+auth\.(uid|jwt|role|email)\(\)')
           or (with_check ~ 'auth\.(uid|jwt|role|email)\(\)'
               and lower(with_check) !~ 'select\s+auth\.(uid|jwt|role|email)\(\)')""",
    "multiple_permissive_policies": """
        select schemaname || '.' || tablename || ' ' || cmd || ' ' || r from pg_policies, unnest(roles) r
        where permissive = 'PERMISSIVE' group by schemaname, tablename, cmd, r having count(*) > 1""",
    "rls_disabled_on_tenant_rows": f"""
        select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname not in {SKIP} and c.relkind in ('r', 'p') and not c.relrowsecurity
          and (n.nspname = 'public' or (
                exists (select from pg_attribute a where a.attrelid = c.oid
                        and a.attname = 'workspace_id' and not a.attisdropped)
                and (has_table_privilege('authenticated', c.oid, 'select')
                     or has_table_privilege('anon', c.oid, 'select'))))""",
    "security_definer_executable_by_api_roles": f"""
        select p.oid::regprocedure::text || ' ' || r from pg_proc p
        join pg_namespace n on n.oid = p.pronamespace, unnest(array['anon', 'authenticated']) r
        where p.prosecdef and n.nspname not in {SKIP} and n.nspname <> 'private'
          and has_function_privilege(r, p.oid, 'execute')""",
    "unindexed_foreign_keys": f"""
        select n.nspname || '.' || c.conname
        from pg_constraint c join pg_namespace n on n.oid = c.connamespace
        where c.contype = 'f' and n.nspname not in {SKIP} and not exists (
          select from pg_index i where i.indrelid = c.conrelid
            and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey)""",
}


def findings(conn: psycopg.Connection) -> dict[str, set[str]]:
    """Each check's findings. Run with an empty search_path, so that pg_policies prints auth.uid()
    qualified whatever the connection's path (the initplan check matches the qualified name)."""
    path = conn.execute("select current_setting('search_path')").fetchone()[0]
    conn.execute("select set_config('search_path', '', false)")
    try:
        return {name: {row[0] for row in conn.execute(query).fetchall()} for name, query in CHECKS.items()}
    finally:
        conn.execute("select set_config('search_path', %s, false)", [path])
