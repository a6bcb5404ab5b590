"""`dimbench verify`: is RLS really in force on this database? Run before trusting it in production.

Against any database with schema/ applied (a real Supabase project's staging copy included), as its
owner: seed probe workspaces, users and chunks (tests' personas, fresh ids), then run
  * the privilege check (exact privileges of anon/authenticated/service_role on our objects),
  * the isolation matrix (every table × command × persona, as PostgREST requests),
  * match_document_chunks as each persona,
  * the membership check (a removed or demoted member keeps nothing, also under replica mode),
  * that everything schema/ creates is there (database/inventory.py, which `schema apply` checks too),
and print one line per finding and a summary; exit non-zero on any finding.

Nothing the probe writes is ever committed: all of it runs in one transaction that is rolled back,
also on Ctrl-C or any error (and a dropped connection aborts it on the server). Probe workspaces are
named with PROBE_MARKER, so rows of any earlier run that did commit are recognised and removed first.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import psycopg
from psycopg import sql

from dimbench.database import db, inventory
from dimbench.errors import DimbenchError
from dimbench.verify.matrix import (
    PERSONAS,
    TABLES,
    cases,
    matrix_findings,
    membership_findings,
    search_findings,
    ws_column,
)
from dimbench.verify.privileges import privilege_findings
from dimbench.verify.world import PROBE_MARKER, World, seed_world


def require_schema(conn: psycopg.Connection) -> list[str]:
    """Refuse a database the probe cannot run on; what else of the schema is missing, as findings.

    The same inventory `schema apply` checks, so the two agree on what is missing (and apply restores it).
    """
    lacking = inventory.missing(conn)
    foundations = [item for item in lacking if item.kind in inventory.FOUNDATIONS]
    if foundations:
        raise DimbenchError(
            f"this database does not have dimbench's schema: {inventory.listing(foundations)} missing"
            " (run `dimbench schema apply` first)"
        )
    return [f"schema: {item} is missing (run `dimbench schema apply`)" for item in lacking]


def remove_leftovers(conn: psycopg.Connection) -> int:
    """Delete the rows of probe workspaces an earlier run left behind; return how many workspaces."""
    with conn.transaction():
        ids = [
            r[0]
            for r in conn.execute(
                "select id from public.workspaces where name like %s", (PROBE_MARKER + " %",)
            ).fetchall()
        ]
        if not ids:
            return 0
        for table in reversed(TABLES):  # children first, whatever the foreign keys say
            conn.execute(
                sql.SQL("delete from {} where {} = any(%s)").format(
                    sql.Identifier("public", table), sql.Identifier(ws_column(table))
                ),
                (ids,),
            )
    return len(ids)


def replica_allowed(conn: psycopg.Connection) -> bool:
    """session_replication_role can only be set by a superuser (not Supabase's `postgres`)."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("set local session_replication_role = replica")
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False


def findings(conn: psycopg.Connection, log: Callable[[str], None] = lambda _: None) -> list[str]:
    """Every finding on this database; the probe world exists only inside a rolled-back transaction."""
    found = require_schema(conn)
    db.use_vectors(conn)
    left = remove_leftovers(conn)
    if left:
        log(f"removed {left} probe workspace(s) an earlier run left behind")
    with conn.transaction(force_rollback=True):
        world = seed_world(conn, World.probe())
        found += privilege_findings(conn)
        found += matrix_findings(conn, world)
        found += search_findings(conn, world)
        found += membership_findings(conn, world, replica=False)
        if replica_allowed(conn):
            found += membership_findings(conn, world, replica=True)
        else:
            log("note: not a superuser, so the replica-mode membership check was skipped")
    return found


def cmd_verify(args: argparse.Namespace) -> int:
    target = db.resolve_target(args.dsn, args.pgdata)
    conninfo = db.ensure_server(target)
    with db.connect(conninfo) as conn:
        found = findings(conn, log=print)
    for line in found:
        print(line)
    if found:
        print(f"verify: {len(found)} finding(s) on {db.redact(conninfo)}: RLS cannot be trusted here")
        return 1
    checked = (
        f"privileges of 3 API roles, {sum(1 for _ in cases())} matrix cases,"
        f" {len(PERSONAS) * 3} searches, membership removal"
    )
    print(f"verify: no findings on {db.redact(conninfo)} ({checked})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from dimbench.cliargs import add_target_args

    parser = sub.add_parser(
        "verify", help="probe a database's RLS: privileges, isolation matrix, search, membership removal"
    )
    add_target_args(parser)
    parser.set_defaults(handler=cmd_verify)
