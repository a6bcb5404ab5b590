"""Database and schema: the server (embedded or --dsn), migrations, PostgREST-style requests,
settling, policy variants."""
