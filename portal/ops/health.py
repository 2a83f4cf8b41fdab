"""Readiness checks: can this process reach the database, the broker and the media storage, and does it
connect as a database role that row-level security holds (``database_role``)?

Each check returns nothing or raises; ``readiness()`` runs them all and says which failed, never why
(the reason goes to the log: it may name hosts or credentials).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection

log = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 3


def check_database() -> None:
    """One round trip to the database (no table read)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_database_role() -> None:
    """Under row-level security, no role that queries run as can bypass it (the login role and
    ``DATABASE_SCOPE_ROLE``: not a superuser, no BYPASSRLS or CREATEROLE, owns no table): an app connected
    as the owner would show every center to everyone."""
    from portal.centers.rls import serving_role_problems

    found = serving_role_problems()
    if found:
        reasons = "; ".join(f"database role {role!r} bypasses row-level security: {', '.join(problems)}"
                            for role, problems in found.items())
        raise RuntimeError(f"{reasons}; connect as the app role (manage.py db_app_role, README \"Row-level "
                           "security\")")


def check_broker() -> None:
    """Connect to the Celery broker once (no retries)."""
    from workers.celery_app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_SECONDS)


def check_storage() -> None:
    """Ask the media storage (files or an object store: whatever ``default_storage`` is) for a name."""
    default_storage.exists(getattr(settings, "READYZ_STORAGE_PROBE", "readyz-probe"))


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "database_role": check_database_role,
    "broker": check_broker,
    "storage": check_storage,
}


def readiness() -> dict[str, str]:
    """``{"database": "ok", "broker": "failed", ...}``."""
    outcome: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            outcome[name] = "ok"
        except Exception:  # any failure means "not ready"; the reason stays in the log
            log.warning("readiness check %s failed", name, exc_info=True)
            outcome[name] = "failed"
    return outcome
