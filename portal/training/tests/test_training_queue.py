"""A training job's broker queue is fixed when it is created: the sweeper re-sends it there, whatever
``TRAINING_QUEUE`` says on the sweeping host."""
from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from portal.jobs.models import JobStatus
from portal.training.models import TrainingJob
from portal.training.services import training_job_create, training_jobs_sweep_stale

pytestmark = [pytest.mark.django_db]


def test_the_sweeper_on_a_cpu_host_resends_gpu_training_to_gpu(cast, reviewed_dataset, settings,
                                                                django_capture_on_commit_callbacks):
    from workers.celery_app import app

    settings.TRAINING_QUEUE = "gpu"  # the web host routes training to the GPU workers
    settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 10
    with mock.patch.object(app, "send_task") as send_task:
        with django_capture_on_commit_callbacks(execute=True):
            job = training_job_create(user=cast.a.admin, dataset_version=reviewed_dataset, base_model=None,
                                      options={"iterations": 4})
        settings.TRAINING_QUEUE = "cpu"  # the sweeper runs in a CPU worker
        TrainingJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, worker_id="gone.invalid:1",
                                                     heartbeat_at=timezone.now() - timedelta(seconds=30))
        with django_capture_on_commit_callbacks(execute=True):
            assert training_jobs_sweep_stale()["requeued"] == 1
        TrainingJob.objects.filter(pk=job.pk).update(last_enqueued_at=timezone.now() - timedelta(seconds=30))
        with django_capture_on_commit_callbacks(execute=True):
            assert training_jobs_sweep_stale()["resent"] == 1
    assert [c.kwargs["queue"] for c in send_task.call_args_list] == ["gpu", "gpu", "gpu"]
