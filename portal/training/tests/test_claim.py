"""Inference and training jobs are claimed by the one ``job_row_claim`` of ``portal.jobs.services``:
the same conditional update, take-over of a gone worker and give-up after too many attempts."""
from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from portal.datasets.models import DatasetLine, DatasetVersion
from portal.jobs import services as job_services
from portal.jobs.models import InferenceJob, JobStatus
from portal.testing.jobs import make_image, make_session
from portal.training import services as training_services
from portal.training.models import TrainingJob

DEAD = "deadhost.invalid:1"
GAVE_UP = "Gave up after 3 attempts; last error: its worker died while running it"


def _inference_job(cast):
    session = make_session(cast.a)
    make_image(session, seed=1)
    with mock.patch.object(job_services, "_send"):
        return job_services.job_create(session=session, user=cast.a.uploader)


def _training_job(cast):
    line = DatasetLine.objects.create(center=cast.a.center, name="claim", created_by=cast.a.admin)
    version = DatasetVersion.objects.create(line=line, center=cast.a.center, number=1, storage_prefix="x",
                                            manifest_sha256="0" * 64, created_by=cast.a.admin)
    return TrainingJob.objects.create(center=cast.a.center, dataset_version=version, status=JobStatus.QUEUED,
                                      queued_at=timezone.now())


KINDS = {
    "inference": (_inference_job, InferenceJob, job_services.job_claim),
    "training": (_training_job, TrainingJob, training_services.training_job_claim),
}


@pytest.fixture(params=sorted(KINDS))
def kind(request, cast, tiny_model, settings):
    settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 30
    settings.JOB_MAX_ATTEMPTS = 3
    make, model, claim = KINDS[request.param]
    return make(cast), model, claim


def test_a_queued_job_is_claimed_once(kind):
    job, model, claim = kind
    assert claim(job_id=job.pk, worker_id="w:1").pk == job.pk
    assert claim(job_id=job.pk, worker_id="w:2") is None  # w:1's heartbeat is fresh
    assert claim(job_id=job.pk, worker_id="w:1") is None  # already mine: nothing to claim
    job = model.objects.get(pk=job.pk)
    assert (job.status, job.worker_id, job.attempts) == (JobStatus.RUNNING, "w:1", 1)


def test_a_job_whose_heartbeat_went_stale_is_taken_over(kind):
    job, model, claim = kind
    model.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, worker_id=DEAD, attempts=1,
                                           heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert claim(job_id=job.pk, worker_id="w:2") is not None
    job = model.objects.get(pk=job.pk)
    assert (job.status, job.worker_id, job.attempts) == (JobStatus.RUNNING, "w:2", 2)


def test_it_gives_up_with_the_same_message_after_too_many_attempts(kind):
    job, model, claim = kind
    model.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, worker_id=DEAD, attempts=3,
                                           heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert claim(job_id=job.pk, worker_id="w:2") is None
    job = model.objects.get(pk=job.pk)
    assert job.status == JobStatus.FAILED
    assert job.error_message == GAVE_UP


def test_both_claims_go_through_job_row_claim(kind):
    job, model, claim = kind
    with mock.patch.object(job_services, "job_row_claim", wraps=job_services.job_row_claim) as shared, \
            mock.patch.object(training_services, "job_row_claim", shared):
        assert claim(job_id=job.pk, worker_id="w:1") is not None
    shared.assert_called_once()
    assert shared.call_args.kwargs["model"] is model
