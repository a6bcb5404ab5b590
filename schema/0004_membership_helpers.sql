-- Membership lookups for the policies, in a schema PostgREST does not expose.
-- security definer so a policy on workspace_members can read workspace_members without recursing
-- into its own policies; search_path = '' so nobody can shadow public.workspace_members or auth.uid();
-- EXECUTE only for the roles whose policies call it (splinter: anon/authenticated security definer
-- functions are only flagged in exposed schemas, and these reveal nothing but the caller's own ids).
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- The ids of the caller's workspaces in which the caller holds one of `roles`.
-- Policies call it as `(select private.workspace_ids(…))`, so it runs once per statement (an InitPlan),
-- and compare with `workspace_id = any (…)`, which a btree on workspace_id serves.
create or replace function private.workspace_ids(roles text[])
returns uuid[]
language sql stable security definer set search_path = ''
as $$
  select coalesce(array_agg(m.workspace_id order by m.workspace_id), '{}')
  from public.workspace_members m
  where m.user_id = (select auth.uid()) and m.role = any (roles)
$$;

revoke execute on function private.workspace_ids(text[]) from public, anon;
grant execute on function private.workspace_ids(text[]) to authenticated, service_role;

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

revoke execute on function private.add_creator_as_owner() from public, anon, authenticated;

drop trigger if exists workspaces_add_creator_as_owner on public.workspaces;
create trigger workspaces_add_creator_as_owner
  after insert on public.workspaces
  for each row execute function private.add_creator_as_owner();
