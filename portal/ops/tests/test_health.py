"""``/healthz`` (alive, no database) and ``/readyz`` (database, its role under row-level security, broker,
storage)."""
from __future__ import annotations

import logging
import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.ops import health
from portal.testing.db import logged_in_as, postgres_only


def test_healthz_answers_without_touching_the_database(client, db):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert len(queries) == 0


def test_readyz_is_ready_when_database_broker_and_storage_answer(client, storage, served_as_app_role):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "database_role": "ok", "broker": "ok",
                                                                 "storage": "ok"}}


def test_readyz_names_the_failed_check_with_503_and_no_detail(client, storage, monkeypatch, served_as_app_role):
    def broker_down():
        raise ConnectionRefusedError("redis://secret-host:6379 refused")

    monkeypatch.setitem(health.CHECKS, "broker", broker_down)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unready", "checks": {"database": "ok", "database_role": "ok",
                                                                   "broker": "failed", "storage": "ok"}}
    assert b"secret-host" not in response.content


@pytest.mark.django_db
def test_readyz_reports_an_unreachable_broker(client, storage):
    from workers.celery_app import app

    unreachable = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    original = app.conf.broker_url, app.conf.broker_write_url
    app.conf.broker_url = app.conf.broker_write_url = unreachable
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url, app.conf.broker_write_url = original
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "failed"




@pytest.fixture
def app_role(db):
    """The non-privileged app role (the CI scope role, else one made in this test's transaction)."""
    from portal.centers.management.commands.db_app_role import app_role_setup

    role = os.environ.get("DATABASE_SCOPE_ROLE") or "sp_rls_app"
    app_role_setup(role, create=True)
    return role


@pytest.fixture
def served_as_app_role(db):
    """On PostgreSQL, the connection logs in as the app role, as a production one does (``/readyz`` refuses
    the test database's superuser); nothing to do on SQLite."""
    if connection.vendor != "postgresql":
        yield
        return
    from portal.centers.management.commands.db_app_role import app_role_setup

    role = os.environ.get("DATABASE_SCOPE_ROLE") or "sp_rls_app"
    app_role_setup(role, create=True)
    with logged_in_as(role):
        yield


@postgres_only
def test_readyz_refuses_a_superuser_connection_under_row_level_security(db, client, storage, settings, caplog):
    settings.DATABASE_RLS, settings.DATABASE_SCOPE_ROLE = True, ""
    user = connection.settings_dict["USER"] or "postgres"
    with caplog.at_level(logging.WARNING, logger="portal.ops.health"):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unready", "checks": {"database": "ok", "database_role": "failed",
                                                               "broker": "ok", "storage": "ok"}}
    assert user.encode() not in response.content  # the reason goes to the log only
    logged = "\n".join(str(record.exc_info[1]) for record in caplog.records if record.exc_info)
    assert f"database role {user!r} bypasses row-level security: is a superuser" in logged
    assert "db_app_role" in logged


@postgres_only
def test_readyz_is_ready_when_connected_as_the_app_role(client, storage, settings, app_role):
    settings.DATABASE_RLS, settings.DATABASE_SCOPE_ROLE = True, ""
    with logged_in_as(app_role):
        response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["database_role"] == "ok"


@postgres_only
def test_readyz_checks_the_login_role_and_the_scope_role(client, storage, settings, app_role, caplog):
    settings.DATABASE_RLS = True
    settings.DATABASE_SCOPE_ROLE = app_role
    with logged_in_as(app_role):
        assert client.get("/readyz").status_code == 200
    user = connection.settings_dict["USER"] or "postgres"
    with caplog.at_level(logging.WARNING, logger="portal.ops.health"):  # a superuser login: refused
        assert client.get("/readyz").json()["checks"]["database_role"] == "failed"
    logged = "\n".join(str(record.exc_info[1]) for record in caplog.records if record.exc_info)
    assert f"database role {user!r} bypasses row-level security: is a superuser" in logged


@pytest.mark.django_db
def test_readyz_does_not_check_the_role_without_row_level_security(client, storage, settings):
    settings.DATABASE_RLS, settings.DATABASE_SCOPE_ROLE = False, ""  # on SQLite it is never in use
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["database_role"] == "ok"
