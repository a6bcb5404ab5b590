"""The rls_seed arm's policy swap: a variant left behind without its saved original is a one-line error."""

from __future__ import annotations

import pytest

from dimbench.database import db, seed_policy
from dimbench.errors import DimbenchError


def test_restore_without_the_saved_policy_is_a_one_line_error(fresh_schema_dsn):
    with db.connect(fresh_schema_dsn) as conn:
        seed_policy.install(conn)
        conn.execute("delete from dimbench.saved_policies")
        with pytest.raises(DimbenchError) as raised:
            seed_policy.restore(conn)
    assert "\n" not in str(raised.value) and "0007_row_level_security.sql" in str(raised.value)
