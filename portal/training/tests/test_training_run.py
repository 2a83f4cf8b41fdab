"""A training job run in this process: claim, progress, checkpoints in storage, candidate, model card;
cancel; options."""
import pytest
from django.core.files.storage import default_storage

from portal.core.errors import DomainError
from portal.jobs.models import JobStatus
from portal.training.models import ModelEvaluation, TrainingJob
from portal.training.services import training_job_cancel, training_job_create, training_job_run

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

FAST = {"iterations": 4, "checkpoint_period": 2, "image_scale": 128, "base_lr": 0.0001}


def test_it_trains_registers_and_evaluates_a_candidate(cast, tiny_model, reviewed_dataset):
    job = training_job_create(user=cast.a.admin, dataset_version=reviewed_dataset, base_model=tiny_model,
                              options=FAST)
    assert training_job_run(job_id=job.pk, worker_id="test:1") == "succeeded"
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.iteration == 4 and len(job.losses) == 4
    assert job.candidate is not None and job.candidate.center_id == cast.a.center.pk
    assert job.candidate.training_summary["manifest_sha256"] == reviewed_dataset.manifest_sha256
    scopes = {e.center_id for e in ModelEvaluation.objects.filter(model_version=job.candidate)}
    assert scopes == {None, cast.a.center.pk}
    card = ModelEvaluation.objects.get(model_version=job.candidate, center=None).metrics
    assert {"segm", "pr_curves", "confusion_matrix", "calibration", "per_center", "per_pixel_size"} <= set(card)
    assert not default_storage.exists(f"training/{job.pk}/checkpoints/last_checkpoint")
    assert training_job_run(job_id=job.pk, worker_id="test:2") == "skipped"  # a duplicate message


def test_a_cancelled_running_job_stops_at_its_next_iteration(cast, tiny_model, reviewed_dataset):
    job = training_job_create(user=cast.a.admin, dataset_version=reviewed_dataset, base_model=tiny_model,
                              options={**FAST, "iterations": 50})
    from portal.training import services

    original = services._progress_writer

    def cancelling(job_, worker_id, mirror):
        write = original(job_, worker_id, mirror)

        def on_progress(progress):
            write(progress)
            if progress.iteration == 2:
                training_job_cancel(job=TrainingJob.objects.get(pk=job_.pk), user=cast.a.admin)
        return on_progress

    services._progress_writer = cancelling
    try:
        assert training_job_run(job_id=job.pk, worker_id="test:1") == "cancelled"
    finally:
        services._progress_writer = original
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.iteration < 50 and job.candidate is None


def test_it_refuses_unknown_options_and_other_roles(cast, tiny_model, reviewed_dataset):
    with pytest.raises(DomainError):
        training_job_create(user=cast.a.admin, dataset_version=reviewed_dataset, base_model=None,
                            options={"epochs": 3})
    with pytest.raises(DomainError):
        training_job_create(user=cast.a.admin, dataset_version=reviewed_dataset, base_model=None,
                            options={"iterations": 0})
    for user in (cast.a.reviewer, cast.b.admin):
        with pytest.raises(DomainError):
            training_job_create(user=user, dataset_version=reviewed_dataset, base_model=None, options=FAST)
