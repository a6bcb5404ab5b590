"""The schema: applies (twice) cleanly, closes the seed's holes, passes our linter checks, and
upgrades a legacy RAG database in place without losing a row."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from dimbench.database import db, schema
from dimbench.errors import DimbenchError
from dimbench.study.live_migration_legacy import LEGACY_TABLES
from tests import splinter
from tests.cli_helpers import run_cli

FIXTURES = Path(__file__).parent / "fixtures"
HARMONIZED = (
    "workspaces",
    "workspace_members",
    "documents",
    "pdf_documents",
    "processed_documents",
    "document_chunks",
)


def test_schema_apply_twice_changes_nothing_the_second_time(new_database: Callable[[str], str]):
    dsn = new_database("twice")
    first = run_cli("schema", "apply", "--dsn", dsn)
    second = run_cli("schema", "apply", "--dsn", dsn)
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout


def test_every_migration_is_idempotent_on_its_own(fresh_schema_dsn: str):
    # Without the ledger (as another migration tool would run them) every file applies again.
    with db.connect(fresh_schema_dsn) as conn:
        conn.execute("truncate dimbench.migrations")
        report = schema.apply(conn)
    assert len(report.applied) == len(schema.load_migrations())


# --- linter checks (the splinter findings we must not have, as queries over the catalog) ---------


def rows(dsn: str, query: str) -> list[tuple]:
    with db.connect(dsn) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.parametrize("check", sorted(splinter.CHECKS))
def test_the_schema_has_no_splinter_finding(schema_dsn, check):
    # tests/splinter.py, over every schema but Supabase's; the tests below are stricter than splinter.
    with db.connect(schema_dsn) as conn:
        assert splinter.findings(conn)[check] == set()


def test_every_policy_is_for_authenticated_only(schema_dsn):
    assert (
        rows(
            schema_dsn,
            """
        select tablename, policyname from pg_policies
        where schemaname = 'public' and roles <> '{authenticated}'""",
        )
        == []
    )


def test_one_permissive_policy_per_table_role_and_command(schema_dsn):
    assert (
        rows(
            schema_dsn,
            """
        select tablename, cmd, count(*) from pg_policies
        where schemaname = 'public' and permissive = 'PERMISSIVE'
        group by tablename, cmd having count(*) > 1 or bool_or(cmd = 'ALL')""",
        )
        == []
    )


def test_every_write_policy_has_a_check(schema_dsn):
    assert (
        rows(
            schema_dsn,
            """
        select tablename, policyname from pg_policies where schemaname = 'public'
        and ((cmd in ('INSERT', 'UPDATE') and with_check is null)
             or coalesce(qual, '') = 'true' or coalesce(with_check, '') = 'true')""",
        )
        == []
    )


def test_no_security_definer_function_is_exposed(schema_dsn):
    # splinter 0028/0029 flag definer functions in the exposed schemas (pgrst.db_schemas: public).
    assert (
        rows(
            schema_dsn,
            """
        select p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and p.prosecdef""",
        )
        == []
    )


def test_the_membership_lookup_is_a_pinned_definer_only_authenticated_may_execute(schema_dsn):
    (secdef, config, executors) = rows(
        schema_dsn,
        """
        select p.prosecdef, p.proconfig,
               array(select r from unnest(array['public', 'anon', 'authenticated', 'service_role']) r
                     where case when r = 'public' then exists (select from aclexplode(p.proacl) a
                                                               where a.grantee = 0)
                                else has_function_privilege(r, p.oid, 'execute') end)
        from pg_proc p where p.oid = 'private.workspace_ids(text[])'::regprocedure""",
    )[0]
    assert secdef and config == ['search_path=""'] and executors == ["authenticated"]


def test_membership_has_one_source_of_truth(schema_dsn):
    # No derived copy (it went stale where triggers do not fire); the lookup reads workspace_members.
    (tables, body) = rows(
        schema_dsn,
        """
        select (select count(*) from pg_class where relnamespace = 'private'::regnamespace
                and relkind in ('r', 'p', 'm')),
               (select prosrc from pg_proc where oid = 'private.workspace_ids(text[])'::regprocedure)""",
    )[0]
    assert tables == 0 and "public.workspace_members" in body


def test_no_security_definer_function_is_executable_by_anon(schema_dsn):
    assert (
        rows(
            schema_dsn,
            """
        select p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema', 'auth', 'extensions')
          and has_function_privilege('anon', p.oid, 'execute')""",
        )
        == []
    )


def test_search_function_runs_as_the_caller(schema_dsn):
    (secdef,) = rows(
        schema_dsn,
        """
        select prosecdef from pg_proc where proname = 'match_document_chunks'""",
    )[0]
    assert not secdef


def test_pgvector_lives_in_extensions(schema_dsn):
    assert rows(
        schema_dsn,
        """
        select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace
        where e.extname = 'vector'""",
    ) == [("extensions",)]


def test_every_foreign_key_has_an_index_with_exactly_its_columns(schema_dsn):
    assert (
        rows(
            schema_dsn,
            """
        select c.conrelid::regclass, c.conname from pg_constraint c
        join pg_namespace n on n.oid = c.connamespace
        where c.contype = 'f' and n.nspname = 'public' and not exists (
          select from pg_index i where i.indrelid = c.conrelid and i.indisvalid
            and string_to_array(i.indkey::text, ' ')::smallint[] = c.conkey)""",
        )
        == []
    )


def test_membership_is_unique_and_indexed_by_user(schema_dsn):
    found = rows(
        schema_dsn,
        """
        select indexrelid::regclass::text from pg_index
        where indrelid = 'public.workspace_members'::regclass""",
    )
    assert {("workspace_members_pkey",), ("workspace_members_user_id_idx",)} <= set(found)


def test_every_key_includes_the_workspace(schema_dsn):
    keys = rows(
        schema_dsn,
        """
        select c.conrelid::regclass::text, c.contype,
               array(select a.attname from pg_attribute a where a.attrelid = c.conrelid
                     and a.attnum = any (c.conkey) order by a.attnum)::text[]
        from pg_constraint c join pg_namespace n on n.oid = c.connamespace
        where n.nspname = 'public' and c.contype in ('p', 'f')
          and c.conrelid <> 'public.workspaces'::regclass""",
    )
    assert keys and all("workspace_id" in columns for _, _, columns in keys)


def test_vectors_are_stored_without_compression(schema_dsn):
    storage = dict(
        rows(
            schema_dsn,
            """
        select attname, attstorage from pg_attribute
        where attrelid = 'public.document_chunks'::regclass and attname like 'embedding\\_%' and atttypid > 0
          and attname not like '%model'""",
        )
    )
    assert storage == {"embedding_768": "p", "embedding_1536": "e"}


# --- legacy upgrade -------------------------------------------------------------------------------

CHUNK_CHECKSUM = """
    select count(*), md5(string_agg(id::text || document_id::text || chunk_index || content
                                    || coalesce({col}::text, '∅'), '|' order by id))
    from public.document_chunks"""
DOCUMENT_CHECKSUM = """
    select count(*), md5(string_agg(id::text || title || coalesce(source_url, '') || metadata::text,
                                    '|' order by id))
    from public.documents"""


def columns(conn: psycopg.Connection) -> set[tuple]:
    return set(
        conn.execute(
            """
        select table_name, column_name, data_type, udt_name, is_nullable, column_default
        from information_schema.columns where table_schema = 'public'
          and table_name = any (%s)""",
            (list(HARMONIZED),),
        ).fetchall()
    )


def constraints(conn: psycopg.Connection) -> set[tuple]:
    return set(
        conn.execute("""
        select conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated
        from pg_constraint where connamespace = 'public'::regnamespace""").fetchall()
    )


@pytest.fixture(scope="module")
def legacy(new_database: Callable[[str], str]) -> tuple[str, tuple, tuple]:
    """A legacy RAG database, its checksums before the upgrade, and the upgrade applied."""
    dsn = new_database("legacy")
    with db.connect(dsn) as conn:
        conn.execute(LEGACY_TABLES)
        conn.execute((FIXTURES / "legacy_rag.sql").read_text())
        chunks = conn.execute(CHUNK_CHECKSUM.format(col="embedding")).fetchone()
        documents = conn.execute(DOCUMENT_CHECKSUM).fetchone()
        schema.apply(conn)
    return dsn, chunks, documents


def test_legacy_upgrade_keeps_every_chunk_and_embedding(legacy):
    dsn, chunks_before, _ = legacy
    with db.connect(dsn) as conn:
        conn.execute("set search_path = public, extensions")
        after = conn.execute(CHUNK_CHECKSUM.format(col="embedding_1536")).fetchone()
    assert after == chunks_before and after[0] == 400


def test_legacy_upgrade_keeps_every_document(legacy):
    dsn, _, documents_before = legacy
    assert rows(dsn, DOCUMENT_CHECKSUM) == [documents_before]


def test_legacy_rows_land_in_one_default_workspace(legacy):
    dsn, _, _ = legacy
    assert rows(
        dsn,
        """
        select (select count(distinct workspace_id) from documents),
               (select count(distinct workspace_id) from document_chunks),
               (select name from workspaces)""",
    ) == [(1, 1, "default (pre-integration)")]


def test_legacy_chunks_are_queued_for_the_768_backfill(legacy):
    dsn, _, _ = legacy
    ((total, pending, ada, embedded, index_valid),) = rows(
        dsn,
        """
        select count(*), count(*) filter (where embedding_768 is null),
               count(*) filter (where embedding_1536_model = 'text-embedding-ada-002'),
               count(*) filter (where embedding_1536 is not null),
               (select indisvalid from pg_index
                where indexrelid = 'document_chunks_embedding_768_backfill_idx'::regclass)
        from document_chunks""",
    )
    assert pending == total and index_valid
    assert ada == embedded < total  # the fixture has chunks never embedded: no model recorded for them


def test_legacy_upgrade_yields_the_fresh_schema(legacy, fresh_schema_dsn):
    dsn, _, _ = legacy
    with db.connect(dsn) as upgraded, db.connect(fresh_schema_dsn) as fresh:
        assert columns(upgraded) == columns(fresh)
        assert constraints(upgraded) == constraints(fresh)


def test_legacy_indexes_survive_and_are_valid(legacy):
    dsn, _, _ = legacy
    found = dict(
        rows(
            dsn,
            """
        select c.relname, i.indisvalid from pg_index i join pg_class c on c.oid = i.indexrelid
        where i.indrelid = 'public.document_chunks'::regclass""",
        )
    )
    assert found.get("document_chunks_embedding_idx") is True
    assert all(found.values())


def test_legacy_upgrade_applies_twice(legacy):
    dsn, _, _ = legacy
    with db.connect(dsn) as conn:
        assert schema.apply(conn).applied == []


# --- how migrations run -------------------------------------------------------------------------


def test_a_no_transaction_migration_runs_each_statement_on_its_own(new_database: Callable[[str], str]):
    # psql splits the script (quotes, comments, dollar quotes); `concurrently` needs no transaction block.
    script = (
        "-- no-transaction: a test\n"
        "create table public.t (a text); -- a comment; with a semicolon\n"
        "do $x$ begin perform ';'; end $x$;\n"
        "insert into public.t values ('it''s; fine');\n"
        "create index concurrently t_a on public.t (a);\n"
    )
    with db.connect(new_database("notx")) as conn:
        schema.apply(conn, [schema.Migration("0001_t.sql", script)])
        assert conn.execute("select a from public.t").fetchall() == [("it's; fine",)]
        assert conn.execute("select indisvalid from pg_index where indexrelid = 't_a'::regclass").fetchone()


def test_a_failing_no_transaction_migration_is_one_line(new_database: Callable[[str], str]):
    script = "-- no-transaction\ncreate index concurrently x on public.nowhere (id);\n"
    bad = schema.Migration("0001_bad.sql", script)
    with db.connect(new_database("bad")) as conn, pytest.raises(DimbenchError) as raised:
        schema.apply(conn, [bad])
    assert str(raised.value) == 'migration 0001_bad.sql failed: relation "public.nowhere" does not exist'
