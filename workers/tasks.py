"""Celery tasks: thin, idempotent, taking ids and calling one service each."""
from __future__ import annotations

import os
import socket

from workers import sweeper  # noqa: F401  (connects the in-worker sweeper to worker signals)
from workers.celery_app import app


@app.task(name="workers.tasks.smoke")
def smoke(value: int) -> dict:
    """Round trip through broker and worker: returns ``value * 2`` and who computed it."""
    return {"value": value * 2, "worker": f"{socket.gethostname()}:{os.getpid()}"}


@app.task(name="workers.tasks.run_inference_job", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_inference_job(job_id: str) -> str:
    """Work on job ``job_id``: the database says what is left to do (a duplicate message does nothing)."""
    from portal.centers.rls import center_scope, system_scope
    from portal.jobs.models import InferenceJob

    with system_scope("find the center of a job message"):
        center_id = InferenceJob.objects.filter(pk=job_id).values_list("center_id", flat=True).first()
    if center_id is None:
        return "skipped"
    from portal.jobs.services import job_run

    with center_scope([center_id]):
        return job_run(job_id=job_id)


@app.task(name="workers.tasks.run_training_job", ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_training_job(job_id: str) -> str:
    """Train (or resume) training job ``job_id``; the database and its checkpoints say where it stands.

    Runs for the job's center and the centers whose consented sessions its dataset version pools."""
    from portal.centers.rls import center_scope, system_scope
    from portal.training.models import TrainingJob

    with system_scope("find the centers of a training job message"):
        job = TrainingJob.objects.filter(pk=job_id).values("center_id", "dataset_version_id").first()
        if job is None:
            return "skipped"
        from portal.datasets.models import DatasetVersion

        pooled = DatasetVersion.objects.filter(pk=job["dataset_version_id"]).values_list(
            "sessions__center_id", flat=True)
        centers = {job["center_id"], *(c for c in pooled if c is not None)}
    from portal.training.services import training_job_run

    with center_scope(centers):
        return training_job_run(job_id=job_id)


@app.task(name="workers.tasks.sweep_stale_training_jobs", ignore_result=True)
def sweep_stale_training_jobs() -> dict:
    """Periodic (beat): re-queue training jobs whose worker died (they resume from their checkpoint)."""
    from portal.centers.rls import system_scope
    from portal.training.services import training_jobs_sweep_stale

    with system_scope("sweeper"):
        return training_jobs_sweep_stale()


@app.task(name="workers.tasks.sweep_stale_jobs", ignore_result=True)
def sweep_stale_jobs() -> dict:
    """Periodic (beat): re-queue jobs whose worker died, re-send messages a broker lost."""
    from portal.centers.rls import system_scope
    from portal.jobs.services import jobs_sweep_stale

    with system_scope("sweeper"):
        return jobs_sweep_stale()


@app.task(name="workers.tasks.audit_fold_pending", ignore_result=True)
def audit_fold_pending() -> int:
    """Periodic (beat): chain the read events still pending (those every reader's fold skipped)."""
    from portal.audit.services import audit_pending_fold
    from portal.centers.rls import system_scope

    with system_scope("audit fold"):
        return audit_pending_fold()
