"""The home page per role: what waits for me, counted by access and blinding, in a fixed number of queries."""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.core.models import Notification, NotificationKind
from portal.core.services import notifications_create
from portal.jobs.models import InferenceJob, JobStatus
from portal.results.models import Detection
from portal.testing import validation as vt
from portal.testing.review import make_reviewable_image


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _home(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("core:home"))
    assert response.status_code == 200
    return response.content.decode()


def _decide(user, detection):
    client = Client()
    client.force_login(user)
    r = client.put(reverse("api-review-decision", kwargs={"detection_id": detection.pk}),
                   {"verdict": "accept", "class_name": ""}, content_type="application/json")
    assert r.status_code == 200, r.content


def _session_progress(html: str, session_id) -> str:
    block = re.search(rf'data-session-id="{session_id}">(.*?)</li>', html, re.S)
    return re.search(r'class="progress-text">([^<]+)<', block.group(1)).group(1) if block else ""


@pytest.mark.django_db
def test_a_reviewer_sees_its_sessions_to_review_with_progress_and_nothing_of_center_2(cast):
    image = make_reviewable_image(cast.a, n=6)  # scores 0.99 … 0.09: three at or above 0.5
    other = make_reviewable_image(cast.b, n=6)
    top = Detection.objects.filter(result_set__image=image).order_by("-score").first()
    _decide(cast.a.reviewer, top)
    html = _home(cast.a.reviewer)
    assert 'id="home-review"' in html
    assert _session_progress(html, image.session_id) == "1 of 3 cells decided"
    assert str(other.session_id) not in html and other.session.patient.code not in html


@pytest.mark.django_db
def test_a_fully_decided_session_no_longer_waits(cast):
    image = make_reviewable_image(cast.a, n=2)  # scores 0.99 and 0.09: one cell to review
    _decide(cast.a.reviewer, Detection.objects.filter(result_set__image=image).order_by("-score").first())
    html = _home(cast.a.reviewer)
    assert str(image.session_id) not in html and "Nothing waits for review" in html


@pytest.mark.django_db
def test_a_validator_sees_its_study_to_score_and_no_session(cast):
    study = vt.make_open_study(cast, cast.a)
    other = vt.make_open_study(cast, cast.b)
    html = _home(cast.a.validator)
    assert 'id="home-validation"' in html and study.name in html and other.name not in html
    total = study.validators.get(user=cast.a.validator).assignments.count()
    assert f"0 of {total} cells scored" in html
    assert 'id="home-review"' not in html and 'id="home-jobs"' not in html
    for secret in (str(study.model_version.pk), study.model_version.name, "score_threshold"):
        assert secret not in html


@pytest.mark.django_db
def test_a_stain_technician_sees_the_cells_waiting_for_stain_results(cast):
    study = vt.make_open_study(cast, cast.a)
    html = _home(cast.a.stain)
    cells = study.cells.filter(center=cast.a.center).count()
    assert f"{cells} of {cells} cells wait for stain results" in html
    assert reverse("validation:stain", kwargs={"study_id": study.pk}) in html
    assert study.name not in _home(cast.b.stain)


@pytest.mark.django_db
def test_an_uploader_sees_the_analyses_running_in_its_center(cast):
    image = make_reviewable_image(cast.a, n=1)
    mv = vt.make_model_version()
    job = InferenceJob.objects.create(center=cast.a.center, session=image.session, model_version=mv,
                                      status=JobStatus.RUNNING, images_total=3, images_done=1)
    html = _home(cast.a.uploader)
    assert f'data-job-id="{job.pk}"' in html and "1 of 3 images" in html and mv.name not in html
    assert str(job.pk) not in _home(cast.b.uploader)


@pytest.mark.django_db
def test_a_center_admin_sees_every_panel_of_the_center_and_the_auditor_the_audit_link(cast):
    make_reviewable_image(cast.a, n=6)
    study = vt.make_open_study(cast, cast.a)
    html = _home(cast.a.admin)
    assert 'id="home-review"' in html and 'id="home-jobs"' in html and 'id="home-validation"' in html
    assert study.name in html
    html = _home(cast.auditor)
    assert reverse("audit:event-list") in html and 'id="home-review"' not in html


@pytest.mark.django_db
def test_unread_notifications_show_in_the_nav_and_marking_read_clears_them(cast):
    (note,) = notifications_create(user_ids=[cast.a.reviewer.pk], kind=NotificationKind.ANALYSIS_SUCCEEDED,
                                   params={"session": "CA-X 2024-01-01", "images_done": 2, "images_total": 2},
                                   link="/review/", center_id=cast.a.center.pk)
    html = _home(cast.a.reviewer)
    assert 'id="nav-unread">1<' in html and "CA-X 2024-01-01" in html
    assert 'id="nav-unread"' not in _home(cast.a.reviewer2)
    client = Client()
    client.force_login(cast.b.reviewer)
    assert client.post(reverse("core:notification-read", kwargs={"notification_id": note.pk})).status_code == 404
    client.force_login(cast.a.reviewer)
    r = client.post(reverse("core:notification-read", kwargs={"notification_id": note.pk}))
    assert r.status_code == 302 and r["Location"] == "/review/"
    assert Notification.objects.get(pk=note.pk).read_at is not None
    assert 'id="nav-unread"' not in _home(cast.a.reviewer)


def _home_queries(user) -> int:
    client = Client()
    client.force_login(user)
    client.get(reverse("core:home"))  # the first request's login bookkeeping is not the page's cost
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("core:home")).status_code == 200
    return len(queries)


# Query budgets of the home page per role (measured; the same for 1 and for 4 of everything).
HOME_QUERY_BUDGETS = {"reviewer": 19, "validator": 12, "stain": 13, "admin": 20, "uploader": 13}  # memberships read once per request


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(HOME_QUERY_BUDGETS))
def test_the_home_page_stays_within_its_query_budget_however_much_waits(cast, role):
    make_reviewable_image(cast.a, n=6)
    vt.make_open_study(cast, cast.a)
    one = _home_queries(getattr(cast.a, role))
    for _ in range(3):
        make_reviewable_image(cast.a, n=6)
        vt.make_open_study(cast, cast.a)
    many = _home_queries(getattr(cast.a, role))
    assert one == many, (role, one, many)
    assert many == HOME_QUERY_BUDGETS[role], (role, many)
