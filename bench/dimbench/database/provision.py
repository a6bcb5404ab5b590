"""Start (or reach) the server, check it, and apply the schema: what `schema apply` and `run` share."""

from __future__ import annotations

from dataclasses import dataclass

from dimbench.database import db, inventory, schema


@dataclass
class Provisioned:
    dsn: str
    info: db.ServerInfo
    report: schema.ApplyReport
    tables: dict[str, int]

    def describe(self) -> str:
        lines = [
            f"server: PostgreSQL {self.info.server_version}, pgvector {self.info.pgvector_version}",
            f"database: {db.redact(self.dsn)}",
            "tables (rows): " + ", ".join(f"{name} ({rows})" for name, rows in self.tables.items()),
        ]
        return "\n".join(lines)


def provision(dsn: str | None, pgdata: str | None) -> Provisioned:
    target = db.resolve_target(dsn, pgdata)
    conninfo = db.ensure_server(target)
    with db.connect(conninfo) as conn:
        db.check_server(conn)
        report = schema.apply(conn)
        info = db.check_server(conn)
        tables = table_rows(conn)
    return Provisioned(conninfo, info, report, tables)


def table_rows(conn) -> dict[str, int]:
    from psycopg import sql

    rows = {}
    for name in inventory.TABLES:
        query = sql.SQL("select count(*) from {}").format(sql.Identifier("public", name))
        rows[name] = conn.execute(query).fetchone()[0]
    return rows
