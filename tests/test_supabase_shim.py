"""The shim (schema/0001) recreates hosted Supabase's catalog state, checked against Supabase's own
values written out here (its init scripts, the auth server's migrations, a hosted project's roles)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from dimbench.database import db, schema

FIXTURES = Path(__file__).parent / "fixtures"

# Hosted Supabase: API roles NOLOGIN INHERIT (since 2023), service_role BYPASSRLS, authenticator
# LOGIN NOINHERIT; none of them superuser.
ROLES = {
    "anon": (False, True, False, False),  # (login, inherit, bypassrls, superuser)
    "authenticated": (False, True, False, False),
    "service_role": (False, True, True, False),
    "authenticator": (True, False, False, False),
}
ROLE_SETTINGS = {
    "anon": {"statement_timeout=3s"},
    "authenticated": {"statement_timeout=8s"},
    "authenticator": {"statement_timeout=8s", "lock_timeout=8s"},
}
AUTH_FUNCTIONS = {
    "uid": (
        "uuid",
        "select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),"
        " (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid",
    ),
    "role": (
        "text",
        "select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),"
        " (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))::text",
    ),
    "email": (
        "text",
        "select coalesce(nullif(current_setting('request.jwt.claim.email', true), ''),"
        " (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email'))::text",
    ),
    "jwt": (
        "jsonb",
        "select coalesce(nullif(current_setting('request.jwt.claim', true), ''),"
        " nullif(current_setting('request.jwt.claims', true), ''))::jsonb",
    ),
}
ALL_ON_TABLES = {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"}
DEFAULT_PRIVILEGES = {  # alter default privileges in schema public grant all on … to the API roles
    "r": ALL_ON_TABLES,
    "f": {"EXECUTE"},
    "S": {"SELECT", "UPDATE", "USAGE"},
}


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", text))).strip()


def test_roles_have_hosted_supabases_attributes(admin):
    found = {
        name: (login, inherit, bypass, superuser)
        for name, login, inherit, bypass, superuser in admin.execute(
            "select rolname, rolcanlogin, rolinherit, rolbypassrls, rolsuper from pg_roles"
            " where rolname = any(%s)",
            (list(ROLES),),
        ).fetchall()
    }
    assert found == ROLES


def test_roles_have_hosted_supabases_timeouts(admin):
    found = dict(
        admin.execute(
            "select r.rolname, s.setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole"
            " where s.setdatabase = 0 and r.rolname = any(%s)",
            (list(ROLES),),
        ).fetchall()
    )
    assert {name: set(config) for name, config in found.items()} == ROLE_SETTINGS


def test_authenticator_and_postgres_may_become_the_api_roles(admin):
    members = admin.execute(
        "select m.rolname, r.rolname from pg_auth_members a join pg_roles r on r.oid = a.roleid"
        " join pg_roles m on m.oid = a.member"
        " where r.rolname in ('anon', 'authenticated', 'service_role')"
        " and m.rolname in ('authenticator', 'postgres')"
    ).fetchall()
    api = {"anon", "authenticated", "service_role"}
    assert {(m, r) for m, r in members} == {(m, r) for m in ("authenticator", "postgres") for r in api}


def test_auth_functions_are_plain_stable_sql_as_supabase_defines_them(admin):
    for name, (returns, body) in AUTH_FUNCTIONS.items():
        row = admin.execute(
            "select l.lanname, p.provolatile, p.prosecdef, p.proconfig, p.prorettype::regtype::text, p.prosrc"
            " from pg_proc p join pg_language l on l.oid = p.prolang where p.oid = %s::regprocedure",
            (f"auth.{name}()",),
        ).fetchone()
        assert row[:5] == ("sql", "s", False, None, returns), name
        assert squash(row[5]) == body, name


def test_auth_uid_is_inlined_into_the_query(admin):
    plan = "\n".join(r[0] for r in admin.execute("explain (verbose, costs off) select auth.uid()"))
    assert "current_setting" in plan and "auth.uid" not in plan


def test_default_privileges_grant_everything_in_public_to_the_api_roles(admin):
    found: dict[str, set[tuple[str, str]]] = {}
    for objtype, grantee, privilege in admin.execute(
        "select d.defaclobjtype::text, a.grantee::regrole::text, a.privilege_type"
        " from pg_default_acl d cross join aclexplode(d.defaclacl) a"
        " where d.defaclnamespace = 'public'::regnamespace"
    ).fetchall():
        found.setdefault(objtype, set()).add((grantee, privilege))
    if admin.info.server_version < 170000:
        DEFAULT_PRIVILEGES["r"] = ALL_ON_TABLES - {"MAINTAIN"}
    api = ("anon", "authenticated", "service_role")
    assert found == {kind: {(g, p) for g in api for p in privs} for kind, privs in DEFAULT_PRIVILEGES.items()}


def test_the_shim_is_skipped_where_auth_uid_already_exists(new_database: Callable[[str], str]):
    dsn = new_database("hosted")
    with db.connect(dsn) as conn:
        # A stand-in for a real project: Supabase Auth's schema and its own auth.uid().
        conn.execute("create schema auth; create table auth.users (id uuid primary key)")
        conn.execute("create function auth.uid() returns uuid language sql stable as $$ select null::uuid $$")
        schema.apply(conn)
        body = conn.execute("select prosrc from pg_proc where oid = 'auth.uid()'::regprocedure").fetchone()[0]
        email = conn.execute("select to_regprocedure('auth.email()')").fetchone()[0]
    assert "null::uuid" in body and email is None


def test_a_database_set_up_by_the_earlier_shim_takes_the_faithful_one(new_database: Callable[[str], str]):
    old = (FIXTURES / "shim_before_issue_12.sql").read_text()
    dsn = new_database("oldshim")
    with db.connect(dsn) as conn:
        schema.apply(conn, [schema.Migration("0001_supabase_shim.sql", old)])
        uid = "select proconfig from pg_proc where oid = 'auth.uid()'::regprocedure"
        assert conn.execute(uid).fetchone()[0] == ['search_path=""']
        schema.apply(conn)
        config, comment = conn.execute(
            "select proconfig, obj_description(oid, 'pg_proc') from pg_proc"
            " where oid = 'auth.uid()'::regprocedure"
        ).fetchone()
        email = conn.execute("select to_regprocedure('auth.email()')").fetchone()[0]
    assert config is None and comment == "dimbench supabase shim" and email is not None
