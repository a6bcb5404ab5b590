-- Supabase shim — NOT applied on hosted Supabase.
-- Recreates what every hosted Supabase project already has, as its init scripts and the auth server's
-- migrations define it, so the migrations after this one run (and are tested) in the same world as
-- production: the API roles and their attributes, role timeouts, auth.uid()/role()/jwt()/email(), and
-- Supabase's default privileges on schema public (which grant `all` to the API roles: our migrations
-- must revoke what they must not have, and the tests see exactly what production would hold).
-- Skipped where auth.uid() exists and is not ours (a real Supabase project). Ours carries a comment
-- marker, so a changed shim re-applies to databases this file set up before.
--
-- Where we deliberately differ from hosted Supabase:
-- * no supabase_admin / supabase_auth_admin / pgbouncer etc.: nothing here uses them, and
--   default privileges are set for the migrating role only (hosted: `for role postgres` and
--   `for role supabase_admin`);
-- * no auth.users and no GoTrue: user ids exist only in the JWT claims we set per request;
-- * authenticator has no password: the embedded server listens on a unix socket only (trust auth).
do $shim$
declare
  marker constant text := 'dimbench supabase shim';
  uid regprocedure := to_regprocedure('auth.uid()');
  api_role text;
begin
  if uid is not null
     and coalesce(obj_description(uid, 'pg_proc'), '') <> marker
     -- the shim of earlier releases: no marker, search_path pinned, and no auth.users beside it
     and not (to_regclass('auth.users') is null
              and (select proconfig from pg_catalog.pg_proc where oid = uid) = array['search_path=""']) then
    raise notice 'auth.uid() exists: Supabase shim skipped';
    return;
  end if;

  -- Roles are cluster-wide: another database on the same server may have created them already, so
  -- their attributes are (re)set either way. API roles are INHERIT on hosted Supabase since 2023.
  foreach api_role in array array['anon', 'authenticated', 'service_role'] loop
    if not exists (select from pg_catalog.pg_roles where rolname = api_role) then
      execute format('create role %I', api_role);
    end if;
    execute format('alter role %I nologin inherit nobypassrls', api_role);
  end loop;
  alter role service_role bypassrls;
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticator') then
    create role authenticator;
  end if;
  alter role authenticator login noinherit;
  grant anon, authenticated, service_role to authenticator;
  -- Hosted Supabase's `postgres` (the dashboard / migration role) may `set role` to the API roles.
  if exists (select from pg_catalog.pg_roles where rolname = 'postgres') then
    grant anon, authenticated, service_role to postgres;
  end if;

  -- Supabase's per-role limits. PostgREST applies a role's settings in each request it switches to.
  alter role anon set statement_timeout = '3s';
  alter role authenticated set statement_timeout = '8s';
  alter role authenticator set statement_timeout = '8s';
  alter role authenticator set lock_timeout = '8s';

  create schema if not exists auth;
  grant usage on schema auth to anon, authenticated, service_role;

  -- Plain `language sql stable`, no `set` clause (as Supabase's): the planner can inline them.
  -- PostgREST puts the verified JWT claims in request.jwt.claims (older versions: request.jwt.claim.*).
  create or replace function auth.uid() returns uuid
    language sql stable
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
  $fn$;

  create or replace function auth.role() returns text
    language sql stable
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
  $fn$;

  create or replace function auth.email() returns text
    language sql stable
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim.email', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
  $fn$;

  create or replace function auth.jwt() returns jsonb
    language sql stable
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
  $fn$;

  execute format('comment on function auth.uid() is %L', marker);

  -- Supabase's default privileges: everything created in public later is fully open to the API roles
  -- until a migration revokes it (see 0012).
  grant usage on schema public to anon, authenticated, service_role;
  alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
  alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
  alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
end
$shim$;

grant usage on schema public to anon, authenticated, service_role;
