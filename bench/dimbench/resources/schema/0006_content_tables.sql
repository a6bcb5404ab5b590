-- The harmonized content tables. Every key and foreign key includes workspace_id, so a chunk cannot
-- point at another workspace's document and the schema could be distributed by workspace (Citus)
-- without redesign. A legacy RAG database already has documents/document_chunks in this shape after
-- 0005, so `if not exists` skips them there. The keys of documents and document_chunks are attached
-- in 0010 from indexes built concurrently in 0009, the same way on a fresh and a legacy database.
-- Lock waits bounded (README, "The schema"): give up after 3 s and let schema apply retry.
set local lock_timeout = '3s';
set local statement_timeout = '1min';

create table if not exists public.documents (
  id uuid not null default gen_random_uuid(),
  workspace_id uuid not null,
  title text not null,
  source_url text,
  metadata jsonb not null default '{}'::jsonb,
  status text not null default 'pending',
  created_by uuid default auth.uid(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint documents_status_check check (status in ('pending', 'processing', 'ready', 'failed'))
);

-- What the PDF extractor knows about a source file.
create table if not exists public.pdf_documents (
  workspace_id uuid not null,
  document_id uuid not null,
  storage_path text not null,
  file_size_bytes bigint,
  -- squawk-ignore prefer-bigint-over-int -- a count per document, far below 2^31: not an id
  page_count integer,
  sha256 text,
  created_at timestamptz not null default now(),
  constraint pdf_documents_pkey primary key (workspace_id, document_id),
  constraint pdf_documents_page_count_check check (page_count is null or page_count >= 0)
);

-- The extractor's processing pipeline, one row per document.
create table if not exists public.processed_documents (
  workspace_id uuid not null,
  document_id uuid not null,
  status text not null default 'queued',
  processor text,
  -- squawk-ignore prefer-bigint-over-int -- a count per document, far below 2^31: not an id
  chunk_count integer,
  error text,
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now(),
  constraint processed_documents_pkey primary key (workspace_id, document_id),
  constraint processed_documents_status_check
    check (status in ('queued', 'processing', 'completed', 'failed'))
);

-- Chunks carry both embeddings during the transition: embedding_1536 (ada-002 or 3-small at 1536)
-- and embedding_768 (3-small at 768), each with the model that produced it (null = not embedded yet).
create table if not exists public.document_chunks (
  id uuid not null default gen_random_uuid(),
  workspace_id uuid not null,
  document_id uuid not null,
  -- squawk-ignore prefer-bigint-over-int -- a position in its document, far below 2^31: not an id
  chunk_index integer not null,
  content text not null,
  embedding_1536 extensions.vector(1536),
  embedding_768 extensions.vector(768),
  embedding_1536_model text,
  embedding_768_model text,
  created_at timestamptz not null default now(),
  constraint document_chunks_chunk_index_check check (chunk_index >= 0)
);

-- Both vectors cannot be stored inline: 6152 + 3080 bytes exceed PostgreSQL's 8160-byte row limit.
-- embedding_768, the column the harmonization standardizes on, stays in the row (PLAIN, as
-- ann-benchmarks and VectorDBBench store vectors); embedding_1536 goes out of line uncompressed
-- (EXTERNAL: float vectors do not compress, so trying is wasted work).
alter table public.document_chunks
  alter column embedding_768 set storage plain,
  alter column embedding_1536 set storage external;
