-- Supabase shim — NOT applied on hosted Supabase.
-- Creates the roles and auth.* functions that every Supabase project already has, exactly as Supabase's
-- own migrations define them, so the migrations after this one apply unchanged to a plain PostgreSQL.
-- The whole block is skipped where auth.uid() exists (a real Supabase project).
do $shim$
begin
  if to_regprocedure('auth.uid()') is not null then
    raise notice 'auth.uid() exists: Supabase shim skipped';
    return;
  end if;

  -- Roles are cluster-wide: another database on the same server may have created them already.
  if not exists (select from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  grant anon, authenticated, service_role to authenticator;

  create schema if not exists auth;
  grant usage on schema auth to anon, authenticated, service_role;

  -- PostgREST puts the verified JWT claims in request.jwt.claims (older versions: request.jwt.claim.*).
  create or replace function auth.uid() returns uuid
    language sql stable set search_path = ''
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
  $fn$;

  create or replace function auth.role() returns text
    language sql stable set search_path = ''
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
  $fn$;

  create or replace function auth.jwt() returns jsonb
    language sql stable set search_path = ''
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
  $fn$;
end
$shim$;

grant usage on schema public to anon, authenticated, service_role;
