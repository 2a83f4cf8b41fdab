"""``/healthz`` (alive, no database) and ``/readyz`` (database, broker, storage)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.ops import health


def test_healthz_answers_without_touching_the_database(client, db):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert len(queries) == 0


@pytest.mark.django_db
def test_readyz_is_ready_when_database_broker_and_storage_answer(client, storage):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok", "storage": "ok"}}


@pytest.mark.django_db
def test_readyz_names_the_failed_check_with_503_and_no_detail(client, storage, monkeypatch):
    def broker_down():
        raise ConnectionRefusedError("redis://secret-host:6379 refused")

    monkeypatch.setitem(health.CHECKS, "broker", broker_down)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unready", "checks": {"database": "ok", "broker": "failed", "storage": "ok"}}
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
