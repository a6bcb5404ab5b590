"""`routed`: the search function picks the path per call from the number of rows the caller may see.

Under RLS the planner cannot see the tenant (its ids come from an InitPlan), so one plan serves a
10-row workspace and a 170,000-row one alike. This design decides in the function instead:

    visible := the chunks in the caller's workspaces (∩ the filter), from a per-workspace count
    visible <= T  →  exact: the rows of those workspaces (workspace_id btree), sorted by distance
    visible >  T  →  the vector index (the session's ef_search / iterative scan), sort disabled for
                     that one statement so the planner cannot fall back to btree + sort

The count is `dimbench_routed.workspace_chunks` (one row per workspace) plus the rows of
`dimbench_routed.workspace_chunk_deltas`, with the same RLS as the chunks: a caller reads only their own
workspaces' counts, so the count leaks nothing the caller could not count themselves. A statement-level
trigger on public.document_chunks *appends* one delta row per workspace it touched (+n inserted, -n
deleted): appending takes no lock another writer waits for, so writers of one workspace never wait for
each other (an earlier version updated the workspace's count row in place, and that row stayed locked
until the writer committed: a 10-chunk insert beside an open 400-chunk ingest waited out the 8 s
statement_timeout). The same trigger then folds the deltas into the per-workspace rows when no other
transaction is folding (`pg_try_advisory_xact_lock`: it never waits for the lock, it skips), so the
deltas stay few. Only a fold updates the per-workspace rows and folds take turns, so that update waits
for nobody either. The count is exact in every snapshot (MVCC: a caller sees the deltas committed before
its statement): no call takes the path the exact count would not have chosen. Triggers do not fire
under `session_replication_role = replica` (logical-replication apply, data-only restores): a stale
count there routes a call down the slower path but never changes which rows it may see (RLS still
filters every row read).

T lives in `dimbench_routed.settings`, so it is data: the study measures both paths on its own queries
and sets T at the crossover (`calibrate`), or the grid fixes it. The crossover moves with the index's
query settings (at a low ef_search the index path may never reach the recall target, so everything goes
exact), so a measured T is measured at each query setting and applied with it (`Routed.measured_at`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from dimbench.study.configs import Build
from dimbench.study.designs import base
from dimbench.vocabulary import FILTERED

NAME = "routed"
ALWAYS_EXACT = 2**62  # thresholds that force one path (calibration measures each)
ALWAYS_INDEX = -1

BODY = """
declare
  ids uuid[] := filter_workspace_ids;
  visible bigint;
  threshold bigint;
  sort_setting text;
begin
{prologue}
  -- The counts carry the chunks' select policy: the rows here are the workspaces this caller may read.
  select coalesce(sum(w.chunks), 0),
         case when ids is null and (select auth.uid()) is not null
              then coalesce(array_agg(distinct w.workspace_id), '{{}}') else ids end
    into visible, ids
  from (select c.workspace_id, c.chunks from {counts} c
        union all
        select d.workspace_id, d.chunks from {deltas} d) w
  where ids is null or w.workspace_id = any (ids);
  select s.threshold into threshold from {settings} s;

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

COUNT_TRIGGER = """
begin
  -- Appended, never updated in place: an insert takes no row lock another writer could wait for.
  if tg_op in ('INSERT', 'UPDATE') then
    insert into {deltas} (workspace_id, chunks)
    select n.workspace_id, count(*) from new_rows n group by n.workspace_id;
  end if;
  if tg_op in ('DELETE', 'UPDATE') then
    insert into {deltas} (workspace_id, chunks)
    select o.workspace_id, -count(*) from old_rows o group by o.workspace_id;
  end if;
  -- Fold unless another transaction is folding (then skip: the next statement folds). The lock is held
  -- to commit, so folds take turns and the per-workspace rows they update wait for nobody.
  if pg_try_advisory_xact_lock({fold_lock}) then
    with moved as (delete from {deltas} returning workspace_id, chunks)
    insert into {counts} as w (workspace_id, chunks)
    select m.workspace_id, sum(m.chunks) from moved m group by m.workspace_id
    on conflict (workspace_id) do update set chunks = w.chunks + excluded.chunks;
  end if;
  return null;
end
"""
# The advisory lock key the folds take turns on (any constant no other code uses).
FOLD_LOCK = 7_061_923_511


def _name(relation: str) -> sql.Identifier:
    return sql.Identifier(base.schema_of(NAME), relation)


def _count_table(relation: str, key: str, policy: str) -> list[sql.Composed]:
    """(workspace_id, chunks) under the chunks' select policy; `key`: workspace_id's constraint."""
    table = _name(relation)
    return [
        sql.SQL("create table {} (workspace_id uuid {}, chunks bigint not null)").format(table, sql.SQL(key)),
        sql.SQL("alter table {} enable row level security").format(table),
        sql.SQL("create policy {} on {} for select to authenticated using ({})").format(
            sql.Identifier(f"{relation}_select"), table, sql.SQL(policy)
        ),
    ]


def set_threshold(conn: psycopg.Connection, threshold: int) -> None:
    conn.execute(sql.SQL("update {} set threshold = %s").format(_name("settings")), (threshold,))


def thresholds(detail: dict[str, Any]) -> dict[str, int]:
    """The T an install measured (or was given) per query setting's key.

    `detail["thresholds"]` maps each setting's key to its T; results written before T was measured per
    setting hold one `detail["threshold"]` for every setting (returned under the key "").
    """
    if "thresholds" in detail:
        return dict(detail["thresholds"] or {})
    return {} if detail.get("threshold") is None else {"": detail["threshold"]}


def visible_rows(conn: psycopg.Connection, workspaces: Any) -> int:
    row = conn.execute(
        sql.SQL(
            "select coalesce(sum(chunks), 0) from (select workspace_id, chunks from {}"
            " union all select workspace_id, chunks from {}) w where workspace_id = any (%s)"
        ).format(_name("workspace_chunks"), _name("workspace_chunk_deltas")),
        (list(workspaces),),
    ).fetchone()
    assert row is not None
    return int(row[0])


@dataclass
class Sample:
    """One query measured down both paths."""

    visible: int
    exact_ms: float
    index_ms: float
    index_recall: float


def choose_threshold(samples: list[Sample], recall_target: float) -> int:
    """The T that routes the measured samples fastest in total, among those whose samples sent down the
    vector path keep a mean recall at the target.

    T ranges over 0 … every sample's visible count; `visible <= T` goes exact. At T = the largest count
    everything is exact (always allowed), so an answer always exists. The mean, not every sample: one
    query's recall@10 is a tenth at a time (0.9 is one neighbour missed), and the study judges recall per
    cell, over queries, too.
    """
    candidates = sorted({0, *(s.visible for s in samples)})
    best: tuple[float, int] | None = None
    for t in candidates:
        routed = [s for s in samples if s.visible > t]
        if routed and sum(s.index_recall for s in routed) / len(routed) < recall_target:
            continue
        cost = sum(s.index_ms if s.visible > t else s.exact_ms for s in samples)
        if best is None or cost < best[0]:
            best = (cost, t)
    assert best is not None
    return best[1]


class Routed(base.Design):
    NAME = NAME
    INDEX_KINDS = ("hnsw", "ivfflat")
    PARAMS: dict[str, Any] = {"threshold": "measured"}  # or a row count
    MEASURED = "threshold"

    def install(self, conn: psycopg.Connection, build: Build, params: dict[str, Any]) -> base.Installed:
        self.remove(conn)
        with base.timed() as took, conn.transaction():
            policy = base.select_policy_qual(conn)
            for statement in self.statements(build, policy, base.search_function(NAME)):
                conn.execute(statement)
        threshold = params.get("threshold", "measured")
        if isinstance(threshold, int):
            set_threshold(conn, threshold)
        return base.Installed(
            NAME,
            build.column_type,
            dict(params),
            took[0],
            index_bytes=0,  # it searches the shared index; its own table is one row per workspace
            table_bytes=base.relation_bytes(conn, base.schema_of(NAME), kind="r"),
            detail={"threshold": threshold if isinstance(threshold, int) else None},
        )

    def statements(
        self, build: Build, policy: str, function: sql.Identifier, threshold: int = ALWAYS_EXACT
    ) -> list[sql.Composed]:
        """Everything install runs, in order; `policy`: public.document_chunks's select qual, copied onto
        the counts. The same list is the script a team applies (public's function replaced, T set)."""
        counts, deltas, settings = (
            _name("workspace_chunks"),
            _name("workspace_chunk_deltas"),
            _name("settings"),
        )
        trigger_function = _name("count_chunks")
        schema = sql.Identifier(base.schema_of(NAME))
        out = [
            sql.SQL("create schema if not exists {}").format(schema),
            sql.SQL("revoke all on schema {} from public").format(schema),
            sql.SQL("grant usage on schema {} to authenticated, service_role").format(schema),
            *_count_table("workspace_chunks", "primary key", policy),
            *_count_table("workspace_chunk_deltas", "not null", policy),
            sql.SQL("create index on {} (workspace_id)").format(deltas),
            sql.SQL("create table {} (threshold bigint not null)").format(settings),
            sql.SQL("insert into {} values ({})").format(settings, sql.Literal(threshold)),
            sql.SQL("alter table {} enable row level security").format(settings),
            sql.SQL("create policy settings_select on {} for select to authenticated using (true)").format(
                settings
            ),
            *[
                sql.SQL("grant select on {} to authenticated, service_role").format(table)
                for table in (counts, deltas, settings)
            ],
            sql.SQL(
                "insert into {} select workspace_id, count(*) from public.document_chunks"
                " group by workspace_id"
            ).format(counts),
            sql.SQL(
                "create function {}() returns trigger language plpgsql security definer"
                " set search_path = '' as {}"
            ).format(
                trigger_function,
                base.dollar_quoted(
                    sql.SQL(COUNT_TRIGGER).format(
                        counts=counts, deltas=deltas, fold_lock=sql.Literal(FOLD_LOCK)
                    )
                ),
            ),
            sql.SQL("revoke execute on function {}() from public").format(trigger_function),
        ]
        for event, tables in (
            ("insert", "new table as new_rows"),
            ("delete", "old table as old_rows"),
            ("update", "old table as old_rows new table as new_rows"),
        ):
            out.append(
                sql.SQL(
                    "create trigger {} after {} on public.document_chunks referencing {}"
                    " for each statement execute function {}()"
                ).format(
                    sql.Identifier(f"dimbench_routed_count_{event}"),
                    sql.SQL(event),
                    sql.SQL(tables),
                    trigger_function,
                )
            )
        body = sql.SQL(BODY).format(
            prologue=base.prologue(build),
            counts=counts,
            deltas=deltas,
            settings=settings,
            distance=base.distance(build),
        )
        out += base.search_statements(function, base.dollar_quoted(body))
        return [*out, *(sql.SQL("analyze {}").format(table) for table in (counts, deltas))]

    def script(self, build: Build, measured: Any = None) -> list[str]:
        threshold = ALWAYS_EXACT if measured is None else int(measured)
        statements = self.statements(
            build, base.SELECT_POLICY, sql.Identifier("public", "match_document_chunks"), threshold
        )
        return [s.as_string(None) + ";" for s in statements]

    def __init__(self, access: str = "rls", repeats: int = 2, recall_target: float = 0.95) -> None:
        # how calibration measures: as which arm's user, how many timings per path, the recall T keeps
        self.access, self.repeats, self.recall_target = access, repeats, recall_target

    def calibrate(self, conn: psycopg.Connection, build: Build, queries: list[Any], k: int) -> dict[str, Any]:
        """Measure both paths on `queries` (as `access`'s user, the session's index settings), set T at the
        crossover and return what was measured (the decision record quotes it)."""
        from dimbench.study import measure
        from dimbench.study.configs import Arm

        arm = Arm(self.access, build, k, self.NAME)

        def timed(query: Any) -> tuple[float, float]:
            answers = [measure.ask(conn, arm, query) for _ in range(self.repeats)]
            return statistics.median(a.latency_ns / 1e6 for a in answers), measure.recall_of(
                answers[0], query, arm
            )

        samples = []
        for query in queries:
            workspaces = query.filter_ids if FILTERED[self.access] else query.visible
            self.set_measured(conn, ALWAYS_EXACT)
            measure.ask(conn, arm, query)  # warm
            exact_ms, _ = timed(query)
            self.set_measured(conn, ALWAYS_INDEX)
            measure.ask(conn, arm, query)
            index_ms, index_recall = timed(query)
            samples.append(Sample(self.visible(conn, workspaces), exact_ms, index_ms, index_recall))
        threshold = choose_threshold(samples, self.recall_target)
        self.set_measured(conn, threshold)
        return {
            "threshold": threshold,
            "access": self.access,
            "repeats": self.repeats,
            "recall_target": self.recall_target,
            "samples": [
                {
                    "visible": s.visible,
                    "exact_ms": round(s.exact_ms, 3),
                    "index_ms": round(s.index_ms, 3),
                    "index_recall": round(s.index_recall, 3),
                }
                for s in sorted(samples, key=lambda s: s.visible)
            ],
        }

    def set_measured(self, conn: psycopg.Connection, value: Any) -> None:
        set_threshold(conn, int(value))

    def live_check(self, conn: psycopg.Connection) -> dict[str, Any]:
        """Each workspace's count as the search function reads it against count(*) of its rows, after
        the writes: a workspace whose count differs is one whose calls can take the path its exact count
        would not (the routing's error rate); and the deltas not yet folded (the reads' extra rows)."""
        row = conn.execute(
            sql.SQL(
                "select count(*), count(*) filter (where coalesce(a.n, 0) <> coalesce(r.n, 0)),"
                " coalesce(max(abs(coalesce(a.n, 0) - coalesce(r.n, 0))), 0), (select count(*) from {deltas})"
                " from (select workspace_id, count(*) n from public.document_chunks group by 1) a"
                " full join (select workspace_id, sum(chunks) n from"
                " (select workspace_id, chunks from {counts}"
                " union all select workspace_id, chunks from {deltas}) u group by 1) r using (workspace_id)"
            ).format(counts=_name("workspace_chunks"), deltas=_name("workspace_chunk_deltas"))
        ).fetchone()
        assert row is not None
        return {
            "workspaces": int(row[0]),
            "miscounted": int(row[1]),
            "largest_error_rows": int(row[2]),
            "unfolded_deltas": int(row[3]),
        }

    def visible(self, conn: psycopg.Connection, workspaces: Any) -> int:
        """The chunks in these workspaces, as the search function counts them (calibration's x axis)."""
        return visible_rows(conn, workspaces)

    def measured_values(self, detail: dict[str, Any]) -> dict[str, Any]:
        return thresholds(detail)


DESIGN = Routed()
