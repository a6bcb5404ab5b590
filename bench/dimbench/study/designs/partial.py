"""`partial`: one partial vector index per tenant big enough to need one, every other tenant exact.

pgvector's README (Multitenancy) recommends this when tenants are few:

    create index … on public.document_chunks using hnsw (<expr> <opclass>) with (m = …, ef_construction = …)
    where workspace_id = '<uuid>'

A partial index is usable only when the planner can prove its predicate: the query must say
`workspace_id = <that value>` as a constant. RLS's `workspace_id = any (InitPlan)` never does, so the
search function splits each call itself:

    ids      := filter_workspace_ids, else the caller's workspaces (their memberships: what
                private.workspace_ids gives the policies), else (no user, no filter: service_role,
                which RLS does not restrict) every workspace
    indexed  := the ids that have a partial index (dimbench_partial.tenants, under the chunks' RLS)
    the rest → one exact query: `workspace_id = any (rest)` (btree), every row sorted by distance
    each indexed ws → `where c.workspace_id = ws`, ws a plpgsql variable: the custom plan has its
                value as a constant, so the partial index is provable (tests check the plan); sort
                is off for these statements, so the planner cannot serve an indexed tenant by
                btree + sort (see the body: RLS makes it underestimate the tenant's rows)
    all candidates merged, the match_count nearest returned

RLS on public.document_chunks still applies to every row read (security invoker). The tenant list has
the chunks' select policy, so a caller learns only which of their own workspaces are indexed, and a
filter naming someone else's workspace is served by the exact query (where RLS drops every row) rather
than by an index scan that would read that workspace's vectors only to discard them.

A tenant that grows past `min_rows` after the install has no index of its own: its calls go down the
exact query (its rows by the workspace_id btree, every one sorted by distance) until someone builds one.
Nothing on the write path does — a build inside an ingest request would hold it for minutes. A team
builds it off the request path (a scheduled job, e.g. pg_cron nightly, or a queue a trigger fills) with
`create index concurrently … where workspace_id = …` and adds the tenant's row: not by rerunning this
install, whose plain builds (one transaction, so a failed install leaves nothing) take a SHARE lock that
blocks every insert into document_chunks while they run. Meanwhile its
searches cost what the exact path costs at its size: routed's calibration measures exactly that (its
samples' `exact_ms` against visible rows, in the record's threshold table).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from dimbench.study.configs import Build
from dimbench.study.designs import base

NAME = "partial"

BODY = """
declare
  ids uuid[] := filter_workspace_ids;
  indexed uuid[];
  rest uuid[];
  ws uuid;
  sort_setting text;
  hits {candidate}[] := '{{}}';
begin
{prologue}
  if ids is null and (select auth.uid()) is not null then
    -- The caller's own memberships: private.workspace_ids's answer, read through the members' RLS
    -- (the caller may execute the helper but has no usage on schema private, so cannot name it).
    select coalesce(array_agg(m.workspace_id), '{{}}') into ids
    from public.workspace_members m
    where m.user_id = (select auth.uid());
  end if;
  select coalesce(array_agg(t.workspace_id), '{{}}') into indexed
  from {tenants} t
  where ids is null or t.workspace_id = any (ids);
  rest := array(select r from unnest(ids) r where not r = any (indexed));

  -- The small tenants, exact: the materialized rows cannot be read in a vector index's order.
  if ids is null or cardinality(rest) > 0 then
    hits := array(
      with candidates as materialized (
        select c.id, c.workspace_id, c.document_id, c.content, {distance} as distance
        from public.document_chunks c
        where c.workspace_id = any (rest) or (ids is null and not c.workspace_id = any (indexed))
      )
      select row(v.id, v.workspace_id, v.document_id, v.content, v.distance)::{candidate}
      from candidates v
      order by v.distance
      limit match_count);
  end if;

  -- Each big tenant on its own: `= ws` is a constant in the custom plan, so its partial index applies.
  -- Sort off for these statements: RLS's `= any (InitPlan)` gets a default selectivity, so the planner
  -- guesses a fraction of the tenant's rows and would take btree + sort for a tenant indexed for size.
  sort_setting := current_setting('enable_sort');
  perform set_config('enable_sort', 'off', true);
  foreach ws in array indexed loop
    hits := hits || array(
      select row(s.id, s.workspace_id, s.document_id, s.content, s.distance)::{candidate}
      from (
        select c.id, c.workspace_id, c.document_id, c.content, {distance} as distance
        from public.document_chunks c
        where c.workspace_id = ws
        order by {distance}
        limit match_count
      ) s);
  end loop;
  perform set_config('enable_sort', sort_setting, true);

  return query
    select h.id, h.workspace_id, h.document_id, h.content, 1 - h.distance
    from unnest(hits) h
    order by h.distance
    limit match_count;
end
"""


def _name(relation: str) -> sql.Identifier:
    return sql.Identifier(base.schema_of(NAME), relation)


def big_tenants(conn: psycopg.Connection, min_rows: int) -> list[tuple[Any, int]]:
    """(workspace_id, chunks) of every tenant above min_rows, largest first (a stable order, so
    installing twice names the same index after the same tenant)."""
    return conn.execute(
        "select workspace_id, count(*) from public.document_chunks group by workspace_id"
        " having count(*) > %s order by count(*) desc, workspace_id",
        (min_rows,),
    ).fetchall()


def _create_index(conn: psycopg.Connection, build: Build, name: str, workspace: Any) -> None:
    conn.execute(
        sql.SQL(
            "create index {} on public.document_chunks using hnsw ({} {}) with ({}) where workspace_id = {}"
        ).format(
            sql.Identifier(name),
            build.expression(),
            build.opclass(),
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.SQL(k), sql.Literal(int(build.params[k])))
                for k in ("m", "ef_construction")
                if k in build.params
            ),
            sql.Literal(workspace),
        )
    )


def indexed_tenants(conn: psycopg.Connection) -> dict[Any, str]:
    """workspace_id -> its partial index's name, as installed."""
    rows = conn.execute(
        sql.SQL("select workspace_id, index_name from {}").format(_name("tenants"))
    ).fetchall()
    return dict(rows)


class Partial(base.Design):
    NAME = NAME
    INDEX_KINDS = ("hnsw",)
    PARAMS: dict[str, Any] = {"min_rows": 1000}  # a tenant with more chunks than this gets its own index

    def install(self, conn: psycopg.Connection, build: Build, params: dict[str, Any]) -> base.Installed:
        if build.index not in self.INDEX_KINDS:
            kinds = ", ".join(self.INDEX_KINDS)
            raise ValueError(f"design {NAME} rides on {kinds} builds, not {build.index}")
        settings = {**self.PARAMS, **params}
        min_rows = int(settings["min_rows"])
        self.remove(conn)
        with base.timed() as took, conn.transaction():
            base.create_schema(conn, NAME)
            tenants, candidate = _name("tenants"), _name("candidate")
            conn.execute(
                sql.SQL(
                    "create table {} (workspace_id uuid primary key, index_name text not null,"
                    " chunks bigint not null)"
                ).format(tenants)
            )
            conn.execute(sql.SQL("alter table {} enable row level security").format(tenants))
            conn.execute(
                sql.SQL("create policy tenants_select on {} for select to authenticated using ({})").format(
                    tenants, sql.SQL(base.select_policy_qual(conn))
                )
            )
            conn.execute(sql.SQL("grant select on {} to authenticated, service_role").format(tenants))
            conn.execute(
                sql.SQL(
                    "create type {} as (id uuid, workspace_id uuid, document_id uuid, content text,"
                    " distance double precision)"
                ).format(candidate)
            )
            for number, (workspace, chunks) in enumerate(big_tenants(conn, min_rows), start=1):
                name = f"{base.index_prefix(NAME)}{build.column_type}_{number}"
                _create_index(conn, build, name, workspace)
                conn.execute(
                    sql.SQL("insert into {} values (%s, %s, %s)").format(tenants), (workspace, name, chunks)
                )
            body = sql.SQL(BODY).format(
                prologue=base.prologue(build),
                tenants=tenants,
                candidate=candidate,
                distance=base.distance(build),
            )
            base.define_search(conn, NAME, body)
            conn.execute("analyze public.document_chunks")
            conn.execute(sql.SQL("analyze {}").format(tenants))
        indexed = conn.execute(sql.SQL("select count(*) from {}").format(_name("tenants"))).fetchone()
        assert indexed is not None
        return base.Installed(
            NAME,
            build.column_type,
            {"min_rows": min_rows},
            took[0],
            index_bytes=base.relation_bytes(conn, "public", base.index_prefix(NAME)),
            table_bytes=base.relation_bytes(conn, base.schema_of(NAME), kind="r"),
            detail={"indexed_tenants": int(indexed[0]), "min_rows": min_rows},
        )


DESIGN = Partial()
