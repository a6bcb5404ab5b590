-- Row Level Security on every table, workspace_members included (the seed left it open: anyone could
-- add themselves to any workspace). One permissive policy per table and command, `to authenticated`,
-- `with check` on every write, auth.uid() only ever as `(select …)` so it runs once per statement.
-- Table privileges (anon none, authenticated and service_role select/insert/update/delete) are set
-- in 0012; service_role bypasses RLS (it is created bypassrls).
--
--   role     read  write content  manage members  manage workspace
--   viewer    x
--   member    x         x
--   admin     x         x              x                 x (not delete)
--   owner     x         x              x                 x
-- Nobody inserts their own membership or changes their own role: the first owner comes from the
-- workspace-creation trigger (0004), everyone else is added by an owner or admin. Only owners grant
-- or revoke the owner role.

-- Lock waits bounded (README, "The schema"): give up after 3 s and let schema apply retry.
set local lock_timeout = '3s';
set local statement_timeout = '1min';

alter table public.workspaces enable row level security;
alter table public.workspace_members enable row level security;
alter table public.documents enable row level security;
alter table public.pdf_documents enable row level security;
alter table public.processed_documents enable row level security;
alter table public.document_chunks enable row level security;

-- workspaces ------------------------------------------------------------------------------------
drop policy if exists workspaces_select on public.workspaces;
-- Members see their workspaces. The creator also sees a workspace in the transaction that created it
-- (created_at defaults to now(), the transaction's start): `insert … returning` checks the new row
-- against this policy before the after-insert trigger has made the creator its owner. In any later
-- transaction only membership counts, so a creator who leaves keeps nothing.
create policy workspaces_select on public.workspaces for select to authenticated
  using (
    id = any ((select private.workspace_ids('{owner,admin,member,viewer}'))::uuid[])
    or (created_by = (select auth.uid()) and created_at = (select now()))
  );

drop policy if exists workspaces_insert on public.workspaces;
create policy workspaces_insert on public.workspaces for insert to authenticated
  with check (created_by = (select auth.uid()));

drop policy if exists workspaces_update on public.workspaces;
create policy workspaces_update on public.workspaces for update to authenticated
  using (id = any ((select private.workspace_ids('{owner,admin}'))::uuid[]))
  with check (id = any ((select private.workspace_ids('{owner,admin}'))::uuid[]));

drop policy if exists workspaces_delete on public.workspaces;
create policy workspaces_delete on public.workspaces for delete to authenticated
  using (id = any ((select private.workspace_ids('{owner}'))::uuid[]));

-- workspace_members -----------------------------------------------------------------------------
drop policy if exists workspace_members_select on public.workspace_members;
create policy workspace_members_select on public.workspace_members for select to authenticated
  using (workspace_id = any ((select private.workspace_ids('{owner,admin,member,viewer}'))::uuid[]));

drop policy if exists workspace_members_insert on public.workspace_members;
create policy workspace_members_insert on public.workspace_members for insert to authenticated
  with check (
    workspace_id = any ((select private.workspace_ids('{owner,admin}'))::uuid[])
    and user_id <> (select auth.uid())
    and (role <> 'owner' or workspace_id = any ((select private.workspace_ids('{owner}'))::uuid[]))
  );

drop policy if exists workspace_members_update on public.workspace_members;
create policy workspace_members_update on public.workspace_members for update to authenticated
  using (
    workspace_id = any ((select private.workspace_ids('{owner,admin}'))::uuid[])
    and user_id <> (select auth.uid())
    and (role <> 'owner' or workspace_id = any ((select private.workspace_ids('{owner}'))::uuid[]))
  )
  with check (
    workspace_id = any ((select private.workspace_ids('{owner,admin}'))::uuid[])
    and user_id <> (select auth.uid())
    and (role <> 'owner' or workspace_id = any ((select private.workspace_ids('{owner}'))::uuid[]))
  );

-- Owners and admins remove others (admins cannot remove owners); anyone may leave.
drop policy if exists workspace_members_delete on public.workspace_members;
create policy workspace_members_delete on public.workspace_members for delete to authenticated
  using (
    user_id = (select auth.uid())
    or (
      workspace_id = any ((select private.workspace_ids('{owner,admin}'))::uuid[])
      and (role <> 'owner' or workspace_id = any ((select private.workspace_ids('{owner}'))::uuid[]))
    )
  );

-- content: documents, pdf_documents, processed_documents, document_chunks -------------------------
-- The same four policies on each table: read for any member, write for owner/admin/member.
do $content$
declare
  t text;
begin
  foreach t in array array['documents', 'pdf_documents', 'processed_documents', 'document_chunks'] loop
    execute format('drop policy if exists %I on public.%I', t || '_select', t);
    execute format(
      'create policy %I on public.%I for select to authenticated
         using (workspace_id = any ((select private.workspace_ids(''{owner,admin,member,viewer}''))::uuid[]))',
      t || '_select', t);
    execute format('drop policy if exists %I on public.%I', t || '_insert', t);
    execute format(
      'create policy %I on public.%I for insert to authenticated
         with check (workspace_id = any ((select private.workspace_ids(''{owner,admin,member}''))::uuid[]))',
      t || '_insert', t);
    execute format('drop policy if exists %I on public.%I', t || '_update', t);
    execute format(
      'create policy %I on public.%I for update to authenticated
         using (workspace_id = any ((select private.workspace_ids(''{owner,admin,member}''))::uuid[]))
         with check (workspace_id = any ((select private.workspace_ids(''{owner,admin,member}''))::uuid[]))',
      t || '_update', t);
    execute format('drop policy if exists %I on public.%I', t || '_delete', t);
    execute format(
      'create policy %I on public.%I for delete to authenticated
         using (workspace_id = any ((select private.workspace_ids(''{owner,admin,member}''))::uuid[]))',
      t || '_delete', t);
  end loop;
end
$content$;
