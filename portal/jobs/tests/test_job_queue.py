"""A job's broker queue is fixed when the job is created: retries and the sweeper's re-sends go to that
queue, whatever ``INFERENCE_QUEUE`` says on the host that retries or sweeps."""
from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from portal.jobs import services
from portal.jobs.models import InferenceJob, JobStatus
from portal.testing.jobs import make_image, make_session


@pytest.fixture
def broker():
    """``send_task`` of the Celery app, recorded instead of sent."""
    from workers.celery_app import app

    with mock.patch.object(app, "send_task") as send_task:
        yield send_task


def _queues(broker) -> list[str]:
    return [c.kwargs["queue"] for c in broker.call_args_list]


def _gpu_job(cast, settings, django_capture_on_commit_callbacks) -> InferenceJob:
    settings.INFERENCE_QUEUE = "gpu"  # the web host that creates the job routes to the GPU workers
    session = make_session(cast.a)
    make_image(session, seed=1)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_create(session=session, user=cast.a.uploader)
    job.refresh_from_db()
    assert job.queue == "gpu"
    return job


def test_the_sweeper_on_a_cpu_host_resends_a_silent_gpu_job_to_gpu(cast, tiny_model, settings, broker,
                                                                    django_capture_on_commit_callbacks):
    job = _gpu_job(cast, settings, django_capture_on_commit_callbacks)
    settings.INFERENCE_QUEUE = "cpu"  # the sweeper runs in a CPU worker
    settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 10
    InferenceJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, worker_id="gone.invalid:1",
                                                  attempts=1, heartbeat_at=timezone.now() - timedelta(seconds=30))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.jobs_sweep_stale()["requeued"] == 1
    assert _queues(broker) == ["gpu", "gpu"]


def test_the_sweeper_on_a_cpu_host_resends_a_lost_gpu_message_to_gpu(cast, tiny_model, settings, broker,
                                                                      django_capture_on_commit_callbacks):
    job = _gpu_job(cast, settings, django_capture_on_commit_callbacks)
    settings.INFERENCE_QUEUE = "cpu"
    settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 10
    InferenceJob.objects.filter(pk=job.pk).update(last_enqueued_at=timezone.now() - timedelta(seconds=30))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.jobs_sweep_stale()["resent"] == 1
    assert _queues(broker) == ["gpu", "gpu"]


def test_a_failed_attempt_is_retried_on_the_jobs_own_queue(cast, tiny_model, settings, broker,
                                                           django_capture_on_commit_callbacks):
    from portal.testing.jobs import stored_bundle_file_rewrite

    settings.JOB_MAX_ATTEMPTS = 3
    settings.JOB_RETRY_BACKOFF_SECONDS = 0
    job = _gpu_job(cast, settings, django_capture_on_commit_callbacks)
    settings.INFERENCE_QUEUE = "cpu"  # a worker with another setting runs and fails it
    stored_bundle_file_rewrite(tiny_model, "model_final.safetensors", lambda data: data[:5000])
    with django_capture_on_commit_callbacks(execute=True):
        assert services.job_run(job_id=job.pk, worker_id="w:1") == "retrying"
    assert _queues(broker) == ["gpu", "gpu"]
