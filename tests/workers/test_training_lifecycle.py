"""Issue 17 acceptance, on the CPU with real Celery workers: two centers with synthetic sessions (one
flow-sorted), review decisions and corrections, a pooled dataset version, a fine-tuning job from the
demo-derived model that is SIGKILLed mid-run and resumes from its checkpoint on a new worker, the
model card evaluations, a gate that refuses a deliberately worse candidate (5 iterations from scratch)
and accepts the fine-tuned one, promotion with an e-signature, and rollback."""
from __future__ import annotations

import os
import shutil
import signal

import pytest

from portal.audit.models import AuditEvent
from portal.centers.models import Role
from portal.centers.services import membership_grant
from portal.core.errors import Conflict, DomainError
from portal.datasets.services import dataset_version_coco, dataset_version_create, training_use_set
from portal.jobs.models import JobStatus
from portal.mlmodels.selectors import model_active_for_center
from portal.mlmodels.services import model_register_bundle
from portal.testing.cast import PASSWORD
from portal.testing.jobs import tiny_bundle
from portal.testing.training import make_session_for, make_synthetic_image, review_image
from portal.training.models import ModelEvaluation, TrainingJob
from portal.training.promotion import model_promote, model_rollback, promotion_gate
from portal.training.services import training_job_create
from tests.helpers import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ITERATIONS = 24
CHECKPOINT_PERIOD = 4


@pytest.fixture
def job_settings(job_settings, tmp_path):
    job_settings.TRAINING_WORK_DIR = tmp_path / "test-process-training"
    return job_settings


def _reviewed_sessions(cc, *, n: int, seed: int) -> list:
    sessions = []
    for k in range(n):
        session = make_session_for(cc)
        for j in range(2):
            image, dets, fp = make_synthetic_image(session, seed=seed + 2 * k + j)
            review_image(cc, image, dets, fp, mistakes=(k == 0))
        training_use_set(user=cc.admin, session=session, consent=True)
        sessions.append(session)
    return sessions


def _wait_job(job_id, predicate, timeout: float, what: str) -> TrainingJob:
    def check():
        job = TrainingJob.objects.get(pk=job_id)
        if job.status == JobStatus.FAILED:
            raise AssertionError(f"training job failed: {job.error_message}")
        return job if predicate(job) else None

    return wait_for(check, timeout, interval=0.5, what=what)


def test_datasets_training_resume_gate_promotion_and_rollback(cast, tiny_model, workers, tmp_path):
    a, b = cast.a, cast.b
    # --- data: center A reviewed + one flow-sorted session; center B reviewed; pooled by an admin of both
    sessions = _reviewed_sessions(a, n=4, seed=200) + _reviewed_sessions(b, n=3, seed=300)
    sorted_session = make_session_for(a)
    for j in range(2):
        make_synthetic_image(sorted_session, seed=400 + j)
    training_use_set(user=a.admin, session=sorted_session, consent=True, sorted_population="1C haploid — round spermatids",
                     sorted_class="round_spermatid", purity_percent=94.0)
    membership_grant(user=a.admin, center=b.center, role=Role.CENTER_ADMIN)
    version = dataset_version_create(user=a.admin, center=a.center, name="clinics", sessions=sessions + [sorted_session])
    coco = dataset_version_coco(version)
    sources = {ann["label_source"] for ann in coco["annotations"]}
    assert sources == {"reviewed", "sorted-population"}
    assert version.counts["left_out"]["uncertain_or_disputed"] >= 2
    held_out = {img["center"] for img in coco["images"] if img["split"] == "test"}
    assert held_out == {str(a.center.pk), str(b.center.pk)}

    # --- center A runs an older, conservative model today
    old_path = tiny_bundle(tmp_path / "old", name="old-conservative", version="1", score_thresh=0.8, max_detections=3)
    old = model_register_bundle(path=old_path, center=a.center, user=None, activate=True)

    # --- fine-tuning from the demo-derived model, SIGKILLed mid-run, resumed by a new worker
    job = training_job_create(user=a.admin, dataset_version=version, base_model=tiny_model, options={
        "iterations": ITERATIONS, "checkpoint_period": CHECKPOINT_PERIOD, "image_scale": 128, "base_lr": 0.00001})
    first = workers.start(1)[0]
    running = _wait_job(job.pk, lambda j: j.iteration >= 2 * CHECKPOINT_PERIOD + 1, 600, "training past a checkpoint")
    assert running.status == JobStatus.RUNNING
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    killed_at = TrainingJob.objects.get(pk=job.pk).iteration
    assert killed_at < ITERATIONS
    # the next worker runs on "another host": its local folder is gone, the checkpoints come from storage
    local = tmp_path / "worker_var" / "training" / str(job.pk)
    assert (local / "output" / "last_checkpoint").is_file()
    shutil.rmtree(local)
    workers.start(1)
    done = _wait_job(job.pk, lambda j: j.status == JobStatus.SUCCEEDED, 900, "the resumed job to finish")
    assert done.iteration == ITERATIONS and done.attempts == 2
    assert done.resumed_from and CHECKPOINT_PERIOD <= done.resumed_from[0] <= killed_at
    assert done.resumed_from[0] % CHECKPOINT_PERIOD == 0
    better = done.candidate
    scopes = set(ModelEvaluation.objects.filter(model_version=better).values_list("center_id", flat=True))
    assert scopes == {None, a.center.pk, b.center.pk}

    # --- a deliberately worse candidate: 5 iterations from scratch
    worse_job = training_job_create(user=a.admin, dataset_version=version, base_model=None,
                                    options={"iterations": 5, "checkpoint_period": 5, "image_scale": 128})
    worse = _wait_job(worse_job.pk, lambda j: j.status == JobStatus.SUCCEEDED, 600, "the 5-iteration run").candidate

    gate = promotion_gate(candidate=worse, center=a.center)
    assert not gate["passed"] and gate["rs_ap50"]["low"] <= -0.01
    with pytest.raises(Conflict):
        model_promote(user=a.admin, candidate=worse, center=a.center, password=PASSWORD)
    gate = promotion_gate(candidate=better, center=a.center)
    assert gate["passed"], gate["reasons"]
    assert gate["rs_ap50"]["ap50_b"] >= gate["rs_ap50"]["ap50_a"]

    # --- promotion with an e-signature, then rollback with another
    with pytest.raises(DomainError):
        model_promote(user=a.admin, candidate=better, center=a.center, password="not the password")
    model_promote(user=a.admin, candidate=better, center=a.center, password=PASSWORD)
    assert model_active_for_center(center=a.center) == better
    model_rollback(user=a.admin, center=a.center, password=PASSWORD)
    assert model_active_for_center(center=a.center) == old
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"training.promote.refused", "training.promote.failed", "training.promote.signature",
            "training.rollback.signature", "datasets.version.create", "datasets.training_use.update"} <= actions
