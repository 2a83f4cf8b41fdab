"""Database helpers for tests: the PostgreSQL-only marker, SQL run behind the application's back, and a
connection that works as another role."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from django.db import connection

# Row locks, row-level security, triggers and roles exist only on PostgreSQL (the embedded SQLite default
# has none of them): such tests run in CI and wherever DATABASE_URL names a PostgreSQL.
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql",
                                   reason="needs PostgreSQL (DATABASE_URL=postgres://...)")


def sql_behind_the_app(sql: str, params=None) -> None:
    """Run ``sql`` as someone with database access could: on PostgreSQL with triggers switched off (a
    superuser can), so only the audit chain itself can catch the change."""
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            if postgres:
                cursor.execute("SET session_replication_role = origin")


@contextlib.contextmanager
def logged_in_as(role: str) -> Iterator[None]:
    """The test connection works as if it had logged in as ``role`` (PostgreSQL ``SET SESSION
    AUTHORIZATION``: ``session_user`` and ``current_user`` both; the test database user is a superuser)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET SESSION AUTHORIZATION {connection.ops.quote_name(role)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET SESSION AUTHORIZATION")
