-- Membership lookups for the policies, in schema `private`, which PostgREST does not expose.
--
-- Policies ask "which workspaces may the caller read / write / manage?" once per statement through
-- private.workspace_ids(roles), called as `(select private.workspace_ids(…))` (an InitPlan) and compared
-- with `workspace_id = any (…)`, which a btree on workspace_id serves.
--
-- It reads private.user_workspaces, a copy of workspace_members keyed by user and kept in step by a
-- trigger. The copy has its own policy (a user sees only their own rows), so the lookup needs no
-- SECURITY DEFINER and no policy recurses: workspace_members' policies read the copy, not themselves.
-- A security definer function callable by `authenticated` would be a privilege escalation endpoint
-- (splinter: authenticated_security_definer_function_executable); the only definer code here is the
-- trigger that maintains the copy, with search_path = '' and EXECUTE granted to nobody.
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

create table if not exists private.user_workspaces (
  workspace_id uuid not null,
  user_id uuid not null,
  role text not null,
  constraint user_workspaces_pkey primary key (workspace_id, user_id),
  -- Deleting (or truncating) a membership removes its copy.
  constraint user_workspaces_membership_fkey foreign key (workspace_id, user_id)
    references public.workspace_members (workspace_id, user_id) on delete cascade
);
create index if not exists user_workspaces_user_id_idx on private.user_workspaces (user_id) include (workspace_id, role);

alter table private.user_workspaces enable row level security;
revoke all on private.user_workspaces from public, anon;
grant select on private.user_workspaces to authenticated, service_role;
drop policy if exists user_workspaces_select on private.user_workspaces;
create policy user_workspaces_select on private.user_workspaces for select to authenticated
  using (user_id = (select auth.uid()));

-- The ids of the caller's workspaces in which the caller holds one of `roles`.
create or replace function private.workspace_ids(roles text[])
returns uuid[]
language sql stable security invoker set search_path = ''
as $$
  select coalesce(array_agg(m.workspace_id order by m.workspace_id), '{}')
  from private.user_workspaces m
  where m.user_id = (select auth.uid()) and m.role = any (roles)
$$;

revoke execute on function private.workspace_ids(text[]) from public, anon;
grant execute on function private.workspace_ids(text[]) to authenticated, service_role;

-- Keep the copy in step with workspace_members (inserts and role changes; deletes cascade).
create or replace function private.sync_user_workspaces()
returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into private.user_workspaces (workspace_id, user_id, role)
  values (new.workspace_id, new.user_id, new.role)
  on conflict (workspace_id, user_id) do update set role = excluded.role;
  return new;
end
$$;

revoke execute on function private.sync_user_workspaces() from public, anon, authenticated, service_role;

drop trigger if exists workspace_members_sync_user_workspaces on public.workspace_members;
create trigger workspace_members_sync_user_workspaces
  after insert or update on public.workspace_members
  for each row execute function private.sync_user_workspaces();

-- Memberships that existed before this migration.
insert into private.user_workspaces (workspace_id, user_id, role)
select workspace_id, user_id, role from public.workspace_members
on conflict (workspace_id, user_id) do update set role = excluded.role;

-- Whoever creates a workspace becomes its owner. Nobody may insert their own membership (see 0007),
-- so this trigger is the only way to the first owner.
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

revoke execute on function private.add_creator_as_owner() from public, anon, authenticated, service_role;

drop trigger if exists workspaces_add_creator_as_owner on public.workspaces;
create trigger workspaces_add_creator_as_owner
  after insert on public.workspaces
  for each row execute function private.add_creator_as_owner();
