"""Real data: import your own chunks (and embeddings) from JSONL/Parquet; embed texts with OpenAI."""
