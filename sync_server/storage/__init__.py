"""Storage: Core tables, the async engine for SQLite or PostgreSQL, Alembic migrations."""
