"""Jobs API and pages: create for a session, list, detail, cancel, session progress; centers."""
from __future__ import annotations

from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.jobs import services
from portal.jobs.models import InferenceJob, JobStatus
from portal.testing.jobs import build_job_world


@pytest.fixture(autouse=True)
def no_broker():
    with mock.patch.object(services, "_send"):
        yield


def test_uploader_starts_an_analysis_and_sees_its_progress(cast, storage, client):
    world = build_job_world(cast, cast.a)
    client.force_login(cast.a.uploader)
    response = client.post("/api/v1/jobs/", {"session_id": str(world["fresh_session"].pk),
                                             "parameters": {"score_threshold": 0.6}}, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and body["images_total"] == 1 and body["parameters"] == {"score_threshold": 0.6}
    assert len(body["images"]) == 1 and body["images"][0]["status"] == "pending"
    progress = client.get(f"/api/v1/sessions/{world['fresh_session'].pk}/jobs/").json()
    assert progress["active"] is True and progress["jobs"][0]["id"] == body["id"]
    cancelled = client.post(f"/api/v1/jobs/{body['id']}/cancel/").json()
    assert cancelled["status"] == "cancelled"
    assert client.post(f"/api/v1/jobs/{body['id']}/cancel/").status_code == 409


def test_bad_parameters_are_a_clear_400(cast, storage, client):
    world = build_job_world(cast, cast.a)
    client.force_login(cast.a.uploader)
    response = client.post("/api/v1/jobs/", {"session_id": str(world["fresh_session"].pk),
                                             "parameters": {"score_threshold": 7}}, content_type="application/json")
    assert response.status_code == 400 and "score_threshold" in response.json()["message"]
    assert not InferenceJob.objects.filter(session=world["fresh_session"]).exists()


def test_job_list_is_filtered_by_center_with_constant_queries(cast, storage, client):
    world_a = build_job_world(cast, cast.a)
    build_job_world(cast, cast.b)
    client.force_login(cast.a.reviewer)
    with CaptureQueriesContext(connection) as first:
        body = client.get("/api/v1/jobs/").json()
    assert [r["id"] for r in body["results"]] == [str(world_a["job"].pk)]
    build_job_world(cast, cast.a)
    with CaptureQueriesContext(connection) as second:
        assert client.get("/api/v1/jobs/").json()["count"] == 2
    assert len(second) == len(first)


def test_session_page_partial_renders_the_polling_panel(cast, storage, rf):
    from django.template.loader import render_to_string

    world = build_job_world(cast, cast.a)
    request = rf.get("/imaging/sessions/x/")
    request.user = cast.a.uploader
    html = render_to_string("jobs/_session_jobs.html", {"session": world["session"]}, request=request)
    assert f"/api/v1/sessions/{world['session'].pk}/jobs/" in html and "jobs/progress.js" in html
    assert "<script>" not in html and "style=" not in html


def test_job_page_shows_status_and_cancel_works_from_html(cast, storage, client):
    world = build_job_world(cast, cast.a)
    client.force_login(cast.a.reviewer)
    page = client.get(f"/jobs/{world['job'].pk}/").content.decode()
    assert "Queued" in page and "Cancel" in page
    assert client.post(f"/jobs/{world['job'].pk}/cancel/").status_code == 302
    world["job"].refresh_from_db()
    assert world["job"].status == JobStatus.CANCELLED
