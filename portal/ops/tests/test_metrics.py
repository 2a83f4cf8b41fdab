"""``/metrics``: Prometheus text that parses, with request latency by view, jobs by state, images
analysed per minute, worker heartbeats and (on Redis) queue depth; only for the token or a superuser."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "scrape-token-for-tests-0123456789"


def _families(response) -> dict:
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def test_metrics_refuse_anonymous_and_a_wrong_token(client, db, metrics_token):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token").status_code == 401


def test_metrics_refuse_a_center_admin(client, cast, metrics_token):
    client.force_login(cast.a.admin)
    assert client.get("/metrics").status_code == 403


def test_no_token_configured_means_no_token_accepted(client, db, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


@pytest.mark.django_db
def test_metrics_parse_and_count_jobs_images_and_heartbeats(client, cast, storage, metrics_token):
    from portal.jobs.models import InferenceJob, JobStatus
    from portal.testing.review import make_reviewable_image

    image = make_reviewable_image(cast.a, n=2)
    result_set = image.result_sets.get()
    assert client.get("/healthz").status_code == 200  # one observation of the latency histogram
    from portal.mlmodels.models import ModelVersion

    model_version = ModelVersion.objects.create(name="m", version="1", weights_sha256="0" * 64, bundle_path="x")
    now = timezone.now()
    job = InferenceJob.objects.create(center=cast.a.center, session=image.session, model_version=model_version,
                                      status=JobStatus.RUNNING, worker_id="gpu-host:42",
                                      heartbeat_at=now - timedelta(seconds=30))
    InferenceJob.objects.create(center=cast.b.center, session=image.session, model_version=model_version,
                                status=JobStatus.QUEUED)
    type(result_set).objects.filter(pk=result_set.pk).update(job=job, completed_at=now)

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    families = _families(response)

    latency = families["portal_request_duration_seconds"]
    assert latency.type == "histogram"
    assert any(s.labels.get("view") == "core:healthz" and s.name.endswith("_count") and s.value >= 1
               for s in latency.samples)
    jobs = {s.labels["state"]: s.value for s in families["portal_jobs"].samples}
    assert jobs["running"] == 1 and jobs["queued"] == 1 and jobs["failed"] == 0
    assert families["portal_images_analysed_last_minute"].samples[0].value == 1
    ages = {s.labels["worker"]: s.value for s in families["portal_worker_heartbeat_age_seconds"].samples}
    assert 29 <= ages["gpu-host:42"] < 120


@pytest.mark.django_db
def test_metrics_show_queue_depth_per_queue_on_redis(client, superuser_client, settings):
    import os

    import redis

    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis://"):
        pytest.skip("the run's broker (CELERY_BROKER_URL) is not Redis")
    connection = redis.Redis.from_url(url, socket_connect_timeout=2)
    settings.CELERY_BROKER_URL = url
    connection.delete("cpu", "gpu")
    connection.rpush("gpu", "m1", "m2")
    try:
        families = _families(superuser_client.get("/metrics"))
    finally:
        connection.delete("gpu")
    depth = {s.labels["queue"]: s.value for s in families["portal_queue_depth"].samples}
    assert depth["gpu"] == 2 and depth["cpu"] == 0


@pytest.fixture
def superuser_client(client, cast):
    client.force_login(cast.superuser)
    return client
