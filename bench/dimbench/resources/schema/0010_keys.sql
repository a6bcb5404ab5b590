-- Primary and foreign keys of the content tables, attached from the unique indexes 0009 built
-- concurrently (`using index`: no second build). A legacy database drops its old (id) keys here.
-- Foreign keys are added NOT VALID (a brief lock) and validated in 0011 (no write lock).
-- Lock waits bounded (README, "The schema"): give up after 3 s and let schema apply retry.
set local lock_timeout = '3s';
set local statement_timeout = '1min';

do $keys$
declare
  pk record;
begin
  for pk in
    select c.conrelid::regclass as tbl, c.conname, c.conname in ('documents_pk', 'document_chunks_pk') as ours
    from pg_catalog.pg_constraint c
    where c.contype = 'p'
      and c.conrelid in ('public.documents'::regclass, 'public.document_chunks'::regclass)
  loop
    if not pk.ours then
      -- Anything that still references the legacy key would block the swap.
      execute format('alter table %s drop constraint %I cascade', pk.tbl, pk.conname);
    end if;
  end loop;

  if not exists (select from pg_catalog.pg_constraint where conname = 'documents_pk'
                 and conrelid = 'public.documents'::regclass) then
    alter table public.documents add constraint documents_pk primary key using index documents_pk;
  end if;
  if not exists (select from pg_catalog.pg_constraint where conname = 'document_chunks_pk'
                 and conrelid = 'public.document_chunks'::regclass) then
    alter table public.document_chunks
      add constraint document_chunks_pk primary key using index document_chunks_pk;
  end if;
end
$keys$;

-- Each foreign key is added only where it is missing, so applying this file again neither drops a
-- validated key nor leaves it NOT VALID (0011 may not run again), and locks nothing.
do $foreign_keys$
declare
  fk record;
begin
  for fk in
    select * from (values
      ('public.documents'::regclass, 'documents_workspace_id_fkey',
       'foreign key (workspace_id) references public.workspaces (id) on delete cascade'),
      ('public.document_chunks'::regclass, 'document_chunks_document_fkey',
       'foreign key (workspace_id, document_id) references public.documents (workspace_id, id) on delete cascade'),
      ('public.pdf_documents'::regclass, 'pdf_documents_document_fkey',
       'foreign key (workspace_id, document_id) references public.documents (workspace_id, id) on delete cascade'),
      ('public.processed_documents'::regclass, 'processed_documents_document_fkey',
       'foreign key (workspace_id, document_id) references public.documents (workspace_id, id) on delete cascade')
    ) as k (tbl, conname, definition)
  loop
    if not exists (select from pg_catalog.pg_constraint where conrelid = fk.tbl and conname = fk.conname) then
      execute format('alter table %s add constraint %I %s not valid', fk.tbl, fk.conname, fk.definition);
    end if;
  end loop;
end
$foreign_keys$;
