"""Server-sent events: ``GET /api/v1/sync/events`` tells terminals when to pull.

:mod:`.hub` holds the streams of this process and reads versions for them; what wakes it
depends on the database: :mod:`.pg_listener` (PostgreSQL LISTEN/NOTIFY, across processes and
hosts) or :mod:`.counter_watch` (SQLite, the change counter read twice a second).
:mod:`.running` starts and stops them with the app.
"""
