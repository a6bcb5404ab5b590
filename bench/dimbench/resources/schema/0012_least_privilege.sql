-- Least privilege for the API roles, stated once, after every object exists.
-- Hosted Supabase's default privileges grant `all` on new tables and functions in public to anon,
-- authenticated and service_role, and PostgreSQL grants EXECUTE on every new function to PUBLIC. A
-- migration that only grants select/insert/update/delete leaves TRUNCATE (which ignores RLS),
-- REFERENCES, TRIGGER and MAINTAIN in place. So: revoke everything, then grant exactly what is needed.
-- Only our own objects are touched: a real project's other tables keep their grants.
-- tests/test_privileges.py (and `dimbench verify`) list what each role holds and fail on any difference.

-- Nobody but the owner creates objects in public (PostgreSQL 15+ already revokes it from PUBLIC).
revoke create on schema public from public, anon, authenticated, service_role;

-- Tables: anon nothing; authenticated the four DML commands, which RLS then narrows; service_role the
-- same (it bypasses RLS; it needs no TRUNCATE, REFERENCES, TRIGGER or MAINTAIN either).
revoke all on public.workspaces, public.workspace_members, public.documents, public.pdf_documents,
  public.processed_documents, public.document_chunks from public, anon, authenticated, service_role;
grant select, insert, update, delete on public.workspaces, public.workspace_members, public.documents,
  public.pdf_documents, public.processed_documents, public.document_chunks to authenticated, service_role;

-- The search function: signed-in users (under RLS) and the backend.
revoke all on function public.match_document_chunks(extensions.vector, integer, uuid[], integer, boolean)
  from public, anon, authenticated, service_role;
grant execute on function public.match_document_chunks(extensions.vector, integer, uuid[], integer, boolean)
  to authenticated, service_role;

-- private: only what the policies evaluate as the caller. Policies apply to authenticated alone
-- (service_role bypasses them, anon has no table privileges), so authenticated alone may execute the
-- membership lookup. A policy calls it by oid, which needs no USAGE on the schema: nobody gets USAGE,
-- so nobody can call anything in private by name. Nobody may execute the trigger function.
revoke all on schema private from public, anon, authenticated, service_role;
revoke all on function private.workspace_ids(text[]) from public, anon, authenticated, service_role;
grant execute on function private.workspace_ids(text[]) to authenticated;
revoke all on function private.add_creator_as_owner() from public, anon, authenticated, service_role;
