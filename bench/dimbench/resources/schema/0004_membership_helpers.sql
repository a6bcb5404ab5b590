-- Membership lookups for the policies, in schema `private`, which PostgREST does not expose.
--
-- One source of truth: policies ask "which workspaces may the caller read / write / manage?" through
-- private.workspace_ids(roles), which reads public.workspace_members itself. It is called once per
-- statement as `(select private.workspace_ids(…))` (an InitPlan) and compared with
-- `workspace_id = any (…)`, which a btree on workspace_id serves.
--
-- It is SECURITY DEFINER (it runs as the owner of workspace_members, to whom RLS does not apply), so
-- workspace_members' own policies can call it without recursing, with search_path = '' and every name
-- qualified. It only ever answers for the caller (auth.uid()), and only `authenticated` may execute it.
-- Splinter's definer lints (0028/0029) cover the exposed schemas only; `private` is not exposed.
--
-- Earlier releases kept a trigger-maintained copy (private.user_workspaces). Triggers and foreign-key
-- actions do not fire under session_replication_role = replica (logical replication, data-only
-- restores), so the copy could keep a removed member's access: it is dropped here.
-- Lock waits bounded (README, "The schema"): give up after 3 s and let schema apply retry.
set local lock_timeout = '3s';
set local statement_timeout = '1min';

create schema if not exists private;
revoke all on schema private from public;

drop trigger if exists workspace_members_sync_user_workspaces on public.workspace_members;
-- squawk-ignore ban-drop-table -- earlier releases' copy, dropped on purpose (above): nothing reads it
drop table if exists private.user_workspaces;
-- squawk-ignore ban-drop-function -- that copy's trigger function; its trigger is gone (above)
drop function if exists private.sync_user_workspaces();

-- The ids of the caller's workspaces in which the caller holds one of `roles`.
create or replace function private.workspace_ids(roles text[])
returns uuid[]
language sql stable security definer set search_path = ''
as $$
  select coalesce(array_agg(m.workspace_id order by m.workspace_id), '{}')
  from public.workspace_members m
  where m.user_id = (select auth.uid()) and m.role = any (roles)
$$;

revoke all on function private.workspace_ids(text[]) from public, anon, authenticated, service_role;
grant execute on function private.workspace_ids(text[]) to authenticated;

-- Whoever creates a workspace becomes its owner. Nobody may insert their own membership (see 0007),
-- so this trigger is the only way to the first owner. (Under session_replication_role = replica it
-- does not fire: the workspace then has no owner, which denies access rather than granting it.)
create or replace function private.add_creator_as_owner()
returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if new.created_by is not null then
    insert into public.workspace_members (workspace_id, user_id, role)
    values (new.id, new.created_by, 'owner')
    on conflict (workspace_id, user_id) do nothing;
  end if;
  return new;
end
$$;

revoke all on function private.add_creator_as_owner() from public, anon, authenticated, service_role;

drop trigger if exists workspaces_add_creator_as_owner on public.workspaces;
create trigger workspaces_add_creator_as_owner
  after insert on public.workspaces
  for each row execute function private.add_creator_as_owner();
