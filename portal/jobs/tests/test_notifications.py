"""When an analysis ends, the session's uploader and the center's reviewers get a notification."""
from __future__ import annotations

from unittest import mock

import pytest
import torch
from django.urls import reverse

from portal.core.models import Notification, NotificationKind
from portal.core.selectors import unread_count
from portal.imaging.models import SessionBlinding
from portal.jobs import services
from portal.jobs.models import JobStatus
from portal.testing.jobs import make_image, make_session


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def sent():
    with mock.patch.object(services, "_send") as send:
        yield send


def test_a_finished_analysis_notifies_uploader_and_reviewers_after_commit(cast, tiny_model, sent,
                                                                           django_capture_on_commit_callbacks):
    session = make_session(cast.a)
    make_image(session, seed=1)
    job = services.job_create(session=session, user=cast.a.reviewer)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.job_run(job_id=job.pk, worker_id="test:1") == "succeeded"
    assert not Notification.objects.exists()  # nothing before the commit
    for callback in callbacks:
        callback()
    recipients = set(Notification.objects.values_list("user__username", flat=True))
    assert recipients == {"a_uploader", "a_reviewer", "a_reviewer2"}
    note = Notification.objects.get(user=cast.a.uploader)
    assert note.kind == NotificationKind.ANALYSIS_SUCCEEDED and note.read_at is None
    assert session.patient.code in note.text and "1 of 1" in note.text
    assert note.link == reverse("imaging:session-detail", kwargs={"pk": session.pk})
    assert unread_count(cast.a.uploader) == 1
    assert unread_count(cast.b.reviewer) == 0 and unread_count(cast.a.validator) == 0


def test_a_failed_analysis_notifies_too_and_blinded_users_hear_nothing(cast, tiny_model, sent, settings,
                                                                      django_capture_on_commit_callbacks):
    settings.JOB_MAX_ATTEMPTS = 1
    session = make_session(cast.a)
    make_image(session, seed=2)
    SessionBlinding.objects.create(user=cast.a.reviewer2, session=session, source="validation.study:test")
    job = services.job_create(session=session, user=cast.a.uploader)
    from portal.testing.jobs import stored_bundle_file_rewrite

    stored_bundle_file_rewrite(tiny_model, "model_final.safetensors", lambda data: data[:5000])
    with django_capture_on_commit_callbacks(execute=True):
        assert services.job_run(job_id=job.pk, worker_id="w:1") == "failed"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert set(Notification.objects.values_list("user__username", flat=True)) == {"a_uploader", "a_reviewer"}
    assert {n.kind for n in Notification.objects.all()} == {NotificationKind.ANALYSIS_FAILED}
