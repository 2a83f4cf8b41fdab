"""Database helpers for tests: the PostgreSQL-only marker, and SQL run behind the application's back."""
from __future__ import annotations

import pytest
from django.db import connection

# Row locks, row-level security, triggers and roles exist only on PostgreSQL (the embedded SQLite default
# has none of them): such tests run in CI and wherever DATABASE_URL names a PostgreSQL.
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql",
                                   reason="needs PostgreSQL (DATABASE_URL=postgres://...)")


def sql_behind_the_app(sql: str, params=None) -> None:
    """Run ``sql`` as someone with database access could: on PostgreSQL with triggers switched off (a
    superuser can), so only the audit chain itself can catch the change."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = origin")
