-- Validate the foreign keys 0010 added NOT VALID. Validation scans the tables but takes only a
-- SHARE UPDATE EXCLUSIVE lock, so reads and writes continue (separate transaction from 0010).
alter table public.documents validate constraint documents_workspace_id_fkey;
alter table public.document_chunks validate constraint document_chunks_document_fkey;
alter table public.pdf_documents validate constraint pdf_documents_document_fkey;
alter table public.processed_documents validate constraint processed_documents_document_fkey;
