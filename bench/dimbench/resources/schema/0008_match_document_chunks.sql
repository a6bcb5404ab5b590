-- The search apps call (as PostgREST rpc): nearest chunks by cosine distance.
-- security invoker, so the caller's RLS policies decide what it can see; search_path = '' with the
-- operator and types qualified; plan_cache_mode = force_custom_plan so every call is planned with its
-- real filter (a one-workspace filter may use the btree, a large one the vector index), as an inline
-- query from the app would be.
-- filter_workspace_ids: null = every workspace the caller may see; otherwise only these (one id for
-- a one-workspace search). embedding_dim: 768 or 1536; half_precision searches embedding_1536 as
-- halfvec(1536), served by an expression index on (embedding_1536::halfvec(1536)).
-- The inner query keeps the index's order; the outer sort restores exact order after an iterative
-- `relaxed_order` scan.
-- Lock waits bounded (README, "The schema"): give up after 3 s and let schema apply retry.
set local lock_timeout = '3s';
set local statement_timeout = '1min';

create or replace function public.match_document_chunks(
  query_embedding extensions.vector,
  match_count integer,
  filter_workspace_ids uuid[] default null,
  embedding_dim integer default 768,
  half_precision boolean default false
)
returns table (id uuid, workspace_id uuid, document_id uuid, content text, similarity double precision)
language plpgsql stable security invoker
set search_path = ''
set plan_cache_mode = force_custom_plan
as $$
begin
  if match_count is null or match_count < 1 then
    raise exception 'match_count must be a positive integer' using errcode = '22023';
  end if;
  if embedding_dim is null or embedding_dim not in (768, 1536) then
    raise exception 'embedding_dim must be 768 or 1536, got %', embedding_dim using errcode = '22023';
  end if;
  if extensions.vector_dims(query_embedding) <> embedding_dim then
    raise exception 'query_embedding has % dimensions, expected %',
      extensions.vector_dims(query_embedding), embedding_dim using errcode = '22023';
  end if;
  if half_precision and embedding_dim <> 1536 then
    raise exception 'half_precision applies to embedding_dim 1536 only' using errcode = '22023';
  end if;

  if embedding_dim = 768 then
    return query
      select s.id, s.workspace_id, s.document_id, s.content, 1 - s.distance
      from (
        select c.id, c.workspace_id, c.document_id, c.content,
               c.embedding_768 operator(extensions.<=>) query_embedding as distance
        from public.document_chunks c
        where filter_workspace_ids is null or c.workspace_id = any (filter_workspace_ids)
        order by c.embedding_768 operator(extensions.<=>) query_embedding
        limit match_count
      ) s
      order by s.distance;
  elsif not half_precision then
    return query
      select s.id, s.workspace_id, s.document_id, s.content, 1 - s.distance
      from (
        select c.id, c.workspace_id, c.document_id, c.content,
               c.embedding_1536 operator(extensions.<=>) query_embedding as distance
        from public.document_chunks c
        where filter_workspace_ids is null or c.workspace_id = any (filter_workspace_ids)
        order by c.embedding_1536 operator(extensions.<=>) query_embedding
        limit match_count
      ) s
      order by s.distance;
  else
    return query
      select s.id, s.workspace_id, s.document_id, s.content, 1 - s.distance
      from (
        select c.id, c.workspace_id, c.document_id, c.content,
               (c.embedding_1536::extensions.halfvec(1536))
                 operator(extensions.<=>) (query_embedding::extensions.halfvec(1536)) as distance
        from public.document_chunks c
        where filter_workspace_ids is null or c.workspace_id = any (filter_workspace_ids)
        order by (c.embedding_1536::extensions.halfvec(1536))
                 operator(extensions.<=>) (query_embedding::extensions.halfvec(1536))
        limit match_count
      ) s
      order by s.distance;
  end if;
end
$$;

revoke execute on function public.match_document_chunks(extensions.vector, integer, uuid[], integer, boolean)
  from public, anon;
grant execute on function public.match_document_chunks(extensions.vector, integer, uuid[], integer, boolean)
  to authenticated, service_role;
