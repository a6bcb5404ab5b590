-- Validate the foreign keys 0010 added NOT VALID. Validation scans the tables but takes only a
-- SHARE UPDATE EXCLUSIVE lock, so reads and writes continue (separate transaction from 0010).
-- Lock waits bounded (README, "The schema"): give up after 3 s and let schema apply retry. The scans
-- block no reads or writes, so they may run long on a large table.
set local lock_timeout = '3s';
set local statement_timeout = '1h';

alter table public.documents validate constraint documents_workspace_id_fkey;
alter table public.document_chunks validate constraint document_chunks_document_fkey;
alter table public.pdf_documents validate constraint pdf_documents_document_fkey;
alter table public.processed_documents validate constraint processed_documents_document_fkey;
