-- Upgrade a pre-integration RAG database in place (the seed's Phase 3). Skipped unless
-- public.document_chunks exists without workspace_id: the legacy shape is documents + document_chunks
-- with a single `embedding vector(1536)` and no workspaces.
-- * every legacy document and chunk is assigned to one default workspace;
-- * `embedding` becomes `embedding_1536` (model recorded as ada-002), `embedding_768` is added empty
--   and the rows still to embed are tracked by a partial index (0009);
-- * new columns use constant defaults, which PostgreSQL stores in the catalog: no table rewrite;
-- * keys are swapped later (0009 builds their indexes concurrently, 0010 attaches them).
-- Lock waits bounded (README, "The schema"): give up after 3 s and let schema apply retry.
set local lock_timeout = '3s';
set local statement_timeout = '1min';

do $upgrade$
declare
  default_workspace constant uuid := '00000000-0000-4000-8000-000000000000';
  fk record;
begin
  if to_regclass('public.document_chunks') is null
     or exists (select from information_schema.columns
                where table_schema = 'public' and table_name = 'document_chunks'
                  and column_name = 'workspace_id') then
    return;
  end if;
  if to_regclass('public.documents') is null
     or not exists (select from information_schema.columns
                    where table_schema = 'public' and table_name = 'document_chunks'
                      and column_name = 'embedding') then
    raise exception 'public.document_chunks is neither the harmonized nor the legacy RAG shape';
  end if;

  insert into public.workspaces (id, name, created_by)
  values (default_workspace, 'default (pre-integration)', null)
  on conflict (id) do nothing;

  -- Legacy foreign keys point at documents(id); 0010 replaces them with (workspace_id, document_id).
  for fk in
    select conname from pg_catalog.pg_constraint
    where conrelid = 'public.document_chunks'::regclass and contype = 'f'
  loop
    execute format('alter table public.document_chunks drop constraint %I', fk.conname);
  end loop;

  execute format(
    'alter table public.documents add column workspace_id uuid not null default %L', default_workspace);
  alter table public.documents
    alter column workspace_id drop default,
    add column if not exists title text not null default '',
    add column if not exists source_url text,
    add column if not exists metadata jsonb not null default '{}'::jsonb,
    add column if not exists status text not null default 'ready',
    add column if not exists created_by uuid,
    add column if not exists created_at timestamptz not null default now(),
    add column if not exists updated_at timestamptz not null default now();
  alter table public.documents
    alter column title drop default,
    alter column status set default 'pending',
    alter column created_by set default auth.uid(),
    add constraint documents_status_check check (status in ('pending', 'processing', 'ready', 'failed'));

  alter table public.document_chunks rename column embedding to embedding_1536;
  execute format(
    'alter table public.document_chunks add column workspace_id uuid not null default %L', default_workspace);
  alter table public.document_chunks
    alter column workspace_id drop default,
    add column embedding_768 extensions.vector(768),
    add column embedding_1536_model text default 'text-embedding-ada-002',
    add column embedding_768_model text,
    add column if not exists created_at timestamptz not null default now(),
    add constraint document_chunks_chunk_index_check check (chunk_index >= 0);
  alter table public.document_chunks alter column embedding_1536_model drop default;
  update public.document_chunks set embedding_1536_model = null where embedding_1536 is null;
end
$upgrade$;
