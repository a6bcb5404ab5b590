-- no-transaction: every index is built concurrently, so this file also upgrades a live legacy
-- database without blocking writes. The unique indexes on (workspace_id, id) become the primary keys
-- in 0010. Covers every foreign key exactly (splinter: unindexed_foreign_keys) and the user_id
-- lookup every policy makes. Vector (ANN) indexes are not here: the study builds and drops them.

-- squawk-disable-assume-in-transaction -- schema apply runs this file through psql (first line)

-- The drop below takes ACCESS EXCLUSIVE: give up after 3 s, as every migration does (README,
-- "The schema"); schema apply retries the file.
set lock_timeout = '3s';
set statement_timeout = '1min';

-- A concurrent build that failed leaves an INVALID index that `if not exists` would keep: drop ours.
do $drop_invalid$
declare
  ix record;
begin
  for ix in
    select c.relname from pg_catalog.pg_index i
    join pg_catalog.pg_class c on c.oid = i.indexrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and not i.indisvalid
      and c.relname in ('documents_pk', 'document_chunks_pk', 'documents_workspace_id_idx',
                        'document_chunks_document_idx', 'document_chunks_embedding_768_backfill_idx',
                        'workspace_members_user_id_idx', 'workspace_members_workspace_id_idx')
  loop
    execute format('drop index public.%I', ix.relname);
  end loop;
end
$drop_invalid$;

-- A concurrent build blocks no reads or writes while it waits for the transactions before it, but
-- gives up its build when its wait times out: wait longer than any API request runs
-- (authenticated's statement_timeout is 8 s), and let a build of a large table take its time.
set lock_timeout = '1min';
set statement_timeout = '1h';

create unique index concurrently if not exists documents_pk
  on public.documents (workspace_id, id);
create unique index concurrently if not exists document_chunks_pk
  on public.document_chunks (workspace_id, id);

create index concurrently if not exists documents_workspace_id_idx
  on public.documents (workspace_id);
create index concurrently if not exists document_chunks_document_idx
  on public.document_chunks (workspace_id, document_id);
-- The 768 backfill queue: chunks still without embedding_768, found without scanning the table.
create index concurrently if not exists document_chunks_embedding_768_backfill_idx
  on public.document_chunks (workspace_id, id) where embedding_768 is null;

create index concurrently if not exists workspace_members_user_id_idx
  on public.workspace_members (user_id, workspace_id) include (role);
create index concurrently if not exists workspace_members_workspace_id_idx
  on public.workspace_members (workspace_id);
