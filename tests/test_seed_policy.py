"""The rls_seed arm's policy swap: a variant left behind without its saved original is a one-line error."""

from __future__ import annotations

import pytest

from dimbench.database import db, schema, seed_policy
from dimbench.errors import DimbenchError


def test_restore_without_the_saved_policy_is_a_one_line_error(fresh_schema_dsn):
    with db.connect(fresh_schema_dsn) as conn:
        seed_policy.install(conn)
        conn.execute("delete from dimbench.saved_policies")
        with pytest.raises(DimbenchError) as raised:
            seed_policy.restore(conn)
    assert "\n" not in str(raised.value) and "0007_row_level_security.sql" in str(raised.value)


def test_a_variant_left_by_a_killed_run_survives_schema_apply_and_is_restored(fresh_schema_dsn):
    # A killed run leaves the variant in place and the optimized policy dropped: `schema apply` (the next
    # run provisions first) re-creates it from 0007, and the run's clean-up still restores cleanly.
    with db.connect(fresh_schema_dsn) as conn:
        seed_policy.install(conn)
        report = schema.apply(conn)
        assert [str(item) for item in report.restored] == [
            "policy document_chunks_select on public.document_chunks"
        ]
        assert seed_policy.restore(conn)
        policies = conn.execute(
            "select policyname from pg_policies where tablename = 'document_chunks' order by 1"
        ).fetchall()
    assert [name for (name,) in policies] == [
        f"document_chunks_{c}" for c in ("delete", "insert", "select", "update")
    ]
