"""dimbench: which embedding dimension and index design for multi-tenant pgvector search under RLS."""

__version__ = "0.1.0"
