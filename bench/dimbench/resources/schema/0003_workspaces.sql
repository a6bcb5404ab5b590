-- Workspaces and their members: the tenancy every other table is keyed by.
-- Closes the seed's holes: one membership per (workspace, user) (the primary key), a role check,
-- and (in 0009) an index on user_id, which every policy looks up.
-- Lock waits bounded (README, "The schema"): give up after 3 s and let schema apply retry.
set local lock_timeout = '3s';
set local statement_timeout = '1min';

create table if not exists public.workspaces (
  id uuid not null default gen_random_uuid(),
  name text not null,
  created_by uuid default auth.uid(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint workspaces_pkey primary key (id),
  constraint workspaces_name_check check (length(name) between 1 and 200)
);

create table if not exists public.workspace_members (
  workspace_id uuid not null,
  user_id uuid not null,
  role text not null default 'member',
  created_at timestamptz not null default now(),
  constraint workspace_members_pkey primary key (workspace_id, user_id),
  constraint workspace_members_workspace_id_fkey
    foreign key (workspace_id) references public.workspaces (id) on delete cascade,
  constraint workspace_members_role_check check (role in ('owner', 'admin', 'member', 'viewer'))
);
