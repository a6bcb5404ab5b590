"""`probed`: routed's rule — exact below T visible rows, the vector index above — with nothing on the
write path.

routed counts a caller's rows from per-workspace counts a statement trigger keeps on every insert and
delete (appended deltas, folded by the writers: no writer waits for another, but every insert statement
pays a trigger and two small writes). probed keeps no count. Each call probes:

    ids      := filter_workspace_ids, else the caller's workspaces (their memberships)
    visible  := count(*) of at most T + 1 chunks of those workspaces (the workspace_id btree, under the
                chunks' RLS), so the probe reads no more than T + 1 index entries whatever the tenant's size
    visible <= T → exact: those workspaces' rows sorted by distance;  visible > T → the vector index

The count is exact and always fresh (a chunk is counted as soon as its insert commits: MVCC, not a
trigger), writers never touch anything of the design's, and a tenant that grows past T is routed to the
index on its next call. T lives in `dimbench_probed.settings` (read, never written, by requests), measured
at the crossover of both paths at each query setting, as routed's is.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from dimbench.study.configs import Build
from dimbench.study.designs import base
from dimbench.study.designs.routed import ALWAYS_EXACT, Routed

NAME = "probed"

BODY = """
declare
  ids uuid[] := filter_workspace_ids;
  visible bigint;
  threshold bigint;
  sort_setting text;
begin
{prologue}
  if ids is null and (select auth.uid()) is not null then
    -- The caller's own memberships, read through the members' RLS (as the policies see them).
    select coalesce(array_agg(m.workspace_id), '{{}}') into ids
    from public.workspace_members m
    where m.user_id = (select auth.uid());
  end if;
  select s.threshold into threshold from {settings} s;
  -- At most T + 1 rows: the probe's cost is bounded by T, not by the tenant's size.
  select count(*) into visible
  from (
    select 1 from public.document_chunks c
    where ids is null or c.workspace_id = any (ids)
    limit least(threshold, {cap}) + 1
  ) probe;

  if visible <= threshold then
    return query
      with candidates as materialized (
        select c.id, c.workspace_id, c.document_id, c.content, {distance} as distance
        from public.document_chunks c
        where ids is null or c.workspace_id = any (ids)
      )
      select v.id, v.workspace_id, v.document_id, v.content, 1 - v.distance
      from candidates v
      order by v.distance
      limit match_count;
  else
    sort_setting := current_setting('enable_sort');
    perform set_config('enable_sort', 'off', true);
    return query
      select s.id, s.workspace_id, s.document_id, s.content, 1 - s.distance
      from (
        select c.id, c.workspace_id, c.document_id, c.content, {distance} as distance
        from public.document_chunks c
        where ids is null or c.workspace_id = any (ids)
        order by {distance}
        limit match_count
      ) s
      order by s.distance;
    perform set_config('enable_sort', sort_setting, true);
  end if;
end
"""
# A probe never needs more than this many rows (T is a few thousand): "always exact" while calibrating
# stays a bounded count too.
PROBE_CAP = 1_000_000


def _name(relation: str) -> sql.Identifier:
    return sql.Identifier(base.schema_of(NAME), relation)


class Probed(Routed):
    NAME = NAME

    def live_check(self, conn: psycopg.Connection) -> None:
        return None  # no count to go wrong: each call counts the rows themselves

    def install(self, conn: psycopg.Connection, build: Build, params: dict[str, Any]) -> base.Installed:
        self.remove(conn)
        with base.timed() as took, conn.transaction():
            for statement in self.statements(build, "", base.search_function(NAME)):
                conn.execute(statement)
        threshold = params.get("threshold", "measured")
        if isinstance(threshold, int):
            self.set_measured(conn, threshold)
        return base.Installed(
            NAME,
            build.column_type,
            dict(params),
            took[0],
            index_bytes=0,  # it searches the shared index; its own table is one row
            table_bytes=base.relation_bytes(conn, base.schema_of(NAME), kind="r"),
            detail={"threshold": threshold if isinstance(threshold, int) else None},
        )

    def statements(
        self, build: Build, policy: str, function: sql.Identifier, threshold: int = ALWAYS_EXACT
    ) -> list[sql.Composed]:
        """Everything install runs, in order (it copies no policy: the probe reads the chunks under
        their own RLS); the same list is the script a team applies."""
        settings = _name("settings")
        schema = sql.Identifier(base.schema_of(NAME))
        body = sql.SQL(BODY).format(
            prologue=base.prologue(build),
            settings=settings,
            distance=base.distance(build),
            cap=sql.Literal(PROBE_CAP),
        )
        return [
            sql.SQL("create schema if not exists {}").format(schema),
            sql.SQL("revoke all on schema {} from public").format(schema),
            sql.SQL("grant usage on schema {} to authenticated, service_role").format(schema),
            sql.SQL("create table {} (threshold bigint not null)").format(settings),
            sql.SQL("insert into {} values ({})").format(settings, sql.Literal(threshold)),
            sql.SQL("alter table {} enable row level security").format(settings),
            sql.SQL("create policy settings_select on {} for select to authenticated using (true)").format(
                settings
            ),
            sql.SQL("grant select on {} to authenticated, service_role").format(settings),
            *base.search_statements(function, base.dollar_quoted(body)),
        ]

    def set_measured(self, conn: psycopg.Connection, value: Any) -> None:
        conn.execute(sql.SQL("update {} set threshold = %s").format(_name("settings")), (int(value),))

    def visible(self, conn: psycopg.Connection, workspaces: Any) -> int:
        row = conn.execute(
            "select count(*) from public.document_chunks where workspace_id = any (%s)", (list(workspaces),)
        ).fetchone()
        assert row is not None
        return int(row[0])


DESIGN = Probed()
