-- pgvector lives in schema `extensions`, never `public` (splinter: extension_in_public).
-- A legacy project that installed it in public gets it moved; its vector columns follow (they refer
-- to the type by oid, not by name).
-- Lock waits bounded (README, "The schema"): give up after 3 s and let schema apply retry.
set local lock_timeout = '3s';
set local statement_timeout = '1min';

create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;

do $move$
begin
  if exists (
    select from pg_catalog.pg_extension e
    join pg_catalog.pg_namespace n on n.oid = e.extnamespace
    where e.extname = 'vector' and n.nspname <> 'extensions'
  ) then
    alter extension vector set schema extensions;
  end if;
end
$move$;

create extension if not exists vector with schema extensions;
