"""Training jobs: create, enqueue (after commit), claim, run (resumable), cancel, sweep.

The rules are those of ``portal.jobs.services`` (claim by conditional update, heartbeat thread, sweeper
re-queue, idempotent ``acks_late`` task), reused from there where they are generic.

Checkpoints: the engine (``inference.engine.finetune``) writes them atomically into a worker-local
folder keyed by the job id (``settings.TRAINING_WORK_DIR/<job id>/output``); every file it writes there
is mirrored to storage (``training/<job id>/checkpoints/``) as soon as it appears. A re-run of the job —
the redelivered message after a worker kill, or the sweeper's re-queue, on this host or another —
restores that folder from storage when it is missing and the engine resumes from the last checkpoint.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from datetime import timedelta
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.audit.services import audit_record
from portal.centers.access import user_may
from portal.centers.policy import Action
from portal.core.errors import Conflict, DomainError
from portal.core.media import CHUNK, media_open_stream
from portal.datasets.models import DatasetVersion
from portal.datasets.services import dataset_version_coco, dataset_version_materialise
from portal.jobs.inference import model_bundle_local_dir
from portal.jobs.models import JobStatus
from portal.jobs.services import Heartbeat, job_row_claim, stale_before, worker_identity
from portal.mlmodels.models import ModelVersion
from portal.training.models import TrainingJob

log = logging.getLogger(__name__)

UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)
ERROR_MAX = 2000
LOSS_POINTS_MAX = 300  # loss history kept for the plot (thinned to every other point when full)

# name: (type, low, high, default). Defaults fit the 2-core CPU worker; the engine's own defaults apply to
# everything else (``inference.engine.finetune.FinetuneOptions``).
OPTION_SPEC: dict[str, tuple[type, float, float, float]] = {
    "iterations": (int, 1, 100_000, 300),
    "base_lr": (float, 1e-6, 1.0, 0.005),
    "image_scale": (int, 64, 2048, 0),  # short edge in px while training; 0: the engine's default
    "checkpoint_period": (int, 1, 100_000, 50),
}


def training_options_clean(options: dict | None) -> dict:
    """Validated options with defaults filled in; unknown keys and out-of-range values are refused."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTION_SPEC))
    if unknown:
        raise DomainError(_("Unknown training options."), extra={"unknown": unknown, "allowed": sorted(OPTION_SPEC)})
    clean = {}
    for key, (kind, low, high, default) in OPTION_SPEC.items():
        value = options.get(key)
        if value is None or value == "":
            clean[key] = default
            continue
        try:
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            value = kind(value)
        except (TypeError, ValueError):
            raise DomainError(_("Option %(key)s must be a number.") % {"key": key}, extra={"option": key})
        if key == "image_scale" and value == 0:
            clean[key] = 0
            continue
        if not (low <= value <= high):
            raise DomainError(_("Option %(key)s must be between %(low)s and %(high)s.") %
                              {"key": key, "low": low, "high": high}, extra={"option": key})
        clean[key] = value
    return clean


def _audit(job: TrainingJob, action: str, *, actor=None, after=None, before=None, request=None) -> None:
    audit_record(actor=actor, action=action, center=job.center_id, obj=job, before=before, request=request,
                 after=after if after is not None else {"status": job.status})


# --- create, enqueue, cancel ------------------------------------------------------------------------------
def training_job_create(*, user, dataset_version: DatasetVersion, base_model: ModelVersion | None,
                        options: dict | None = None, request=None) -> TrainingJob:
    """Queue a training job on the dataset version of the user's center (audited, sent after commit).

    ``base_model`` None trains from scratch; otherwise it must be a site-wide model or one of the center's.
    """
    center_id = dataset_version.center_id
    if user is not None and not getattr(user, "is_superuser", False) and not user_may(user, center_id,
                                                                                       Action.TRAINING_RUN):
        raise DomainError(_("Only an administrator of the center starts training."), status_code=403)
    if base_model is not None and base_model.center_id not in (None, center_id):
        raise DomainError(_("This base model belongs to another center."))
    clean = training_options_clean(options)
    if not dataset_version.counts.get("images_per_split", {}).get("train"):
        raise DomainError(_("The dataset version has no training images."))
    with transaction.atomic():
        job = TrainingJob(center_id=center_id, dataset_version=dataset_version, base_model=base_model,
                          options=clean, status=JobStatus.QUEUED, queued_at=timezone.now(),
                          queue=settings.TRAINING_QUEUE,
                          max_iter=clean["iterations"],
                          created_by=user if getattr(user, "is_authenticated", False) else None)
        job.full_clean()
        job.save()
        _audit(job, "training.job.create", actor=user, request=request, after={
            "status": job.status, "dataset_version": str(dataset_version.pk), "options": clean,
            "base_model": str(base_model.pk) if base_model else None})
        training_job_enqueue(job=job)
    return job


def _send(job_id: str, countdown: float | None, *, queue: str) -> None:
    from workers.celery_app import app

    try:
        app.send_task("workers.tasks.run_training_job", args=[job_id], queue=queue,
                      countdown=countdown, retry=True, ignore_result=True,
                      retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5,
                                    "interval_max": 1.0})
    except Exception:  # broker down: the job stays queued and the sweeper sends it again
        log.warning("could not send training job %s to the broker; the sweeper will retry", job_id, exc_info=True)


def training_job_enqueue(*, job: TrainingJob, countdown: float | None = None) -> None:
    """Record that a message is sent and send it (the job id only) once the transaction commits, to the
    job's own queue (chosen when it was created), whatever this host's ``TRAINING_QUEUE`` says."""
    TrainingJob.objects.filter(pk=job.pk).update(last_enqueued_at=timezone.now(), enqueue_count=F("enqueue_count") + 1)
    job_id, queue = str(job.pk), job.queue
    transaction.on_commit(lambda: _send(job_id, countdown, queue=queue))


@transaction.atomic
def training_job_cancel(*, job: TrainingJob, user, request=None) -> TrainingJob:
    """Cancel a queued job now; a running job stops at its next iteration (its checkpoints are dropped)."""
    if user is not None and not getattr(user, "is_superuser", False) and not user_may(user, job.center_id,
                                                                                       Action.TRAINING_RUN):
        raise DomainError(_("Only an administrator of the center cancels training."), status_code=403)
    job = TrainingJob.objects.select_for_update().get(pk=job.pk)
    if job.is_finished:
        raise Conflict(_("The job has already ended."), extra={"status": job.status})
    before = {"status": job.status}
    job.cancel_requested = True
    if job.status == JobStatus.QUEUED:
        job.status = JobStatus.CANCELLED
        job.finished_at = timezone.now()
    job.save(update_fields=["cancel_requested", "status", "finished_at"])
    _audit(job, "training.job.cancel", actor=user, before=before, request=request,
           after={"status": job.status, "cancel_requested": True})
    return job


# --- claim ------------------------------------------------------------------------------------------------
def training_job_claim(*, job_id, worker_id: str) -> TrainingJob | None:
    """Claim a training job for ``worker_id`` by the rules of ``portal.jobs.services.job_row_claim``
    (queued → running, or take over a job whose worker is gone; past ``JOB_MAX_ATTEMPTS`` it fails)."""
    return job_row_claim(
        model=TrainingJob, job_id=job_id, worker_id=worker_id,
        select_related=("dataset_version", "base_model", "center"),
        give_up=lambda job, reason: _end(job, worker_id, JobStatus.FAILED, reason))


def _end(job: TrainingJob, worker_id: str, status: str, error: str = "", **fields) -> bool:
    with transaction.atomic():
        n = TrainingJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker_id=worker_id).update(
            status=status, finished_at=timezone.now(), error_message=error[:ERROR_MAX], stage="", retry_at=None,
            **fields)
        if n:
            job.refresh_from_db()
            _audit(job, f"training.job.{ {'succeeded': 'succeed', 'failed': 'fail'}.get(status, status) }",
                   after={"status": status, "error": error[:500], "attempts": job.attempts,
                          "candidate": str(job.candidate_id) if job.candidate_id else None})
    return bool(n)


def _attempt_failed(job: TrainingJob, worker_id: str, error: str) -> str:
    job.refresh_from_db(fields=["attempts"])
    if job.attempts >= settings.JOB_MAX_ATTEMPTS:
        _end(job, worker_id, JobStatus.FAILED, f"Failed after {job.attempts} attempts: {error}")
        return "failed"
    backoff = settings.JOB_RETRY_BACKOFF_SECONDS * (2 ** (job.attempts - 1))
    with transaction.atomic():
        n = TrainingJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker_id=worker_id).update(
            status=JobStatus.QUEUED, worker_id="", queued_at=timezone.now(), error_message=error[:ERROR_MAX],
            retry_at=timezone.now() + timedelta(seconds=backoff), stage="")
        if n:
            training_job_enqueue(job=job, countdown=backoff)
    return "retrying"


# --- checkpoints: worker-local folder mirrored to storage ---------------------------------------------------
def work_dir(job_id) -> Path:
    return Path(settings.TRAINING_WORK_DIR) / str(job_id)


def _mirror_prefix(job_id) -> str:
    return f"training/{job_id}/checkpoints"


class CheckpointMirror:
    """Copies every new or changed file of the engine's output folder to storage, and back.

    Storage has no atomic rename, so a file is never replaced in place (a crash between a delete and a
    save would lose it, ``last_checkpoint`` included): each copy is saved under a new version name,
    ``<name>@<sequence>-<size>``, and only then are the older versions of that name removed. ``restore``
    takes, per name, the newest version whose stored size is the one in its name (a copy cut short by a
    crash is skipped for the previous one)."""

    def __init__(self, job_id, output_dir: Path):
        self.prefix = _mirror_prefix(job_id)
        self.output_dir = output_dir
        self.seen: dict[str, float] = {}
        self._versions: dict[str, list[tuple[int, int, str]]] | None = None  # name -> (sequence, size, stored)

    @staticmethod
    def _parse(stored: str) -> tuple[str, int, int | None]:
        """(name, sequence, size) of a stored file name; a plain name (an older mirror) is version 0."""
        name, sep, version = stored.rpartition("@")
        sequence, dash, size = version.partition("-")
        if not sep or not dash or not sequence.isdigit() or not size.isdigit():
            return stored, 0, None
        return name, int(sequence), int(size)

    def versions(self) -> dict[str, list[tuple[int, int, str]]]:
        """The stored versions of each mirrored file, oldest first (listed once, then kept up to date)."""
        if self._versions is None:
            self._versions = {}
            try:
                _, stored_names = default_storage.listdir(self.prefix)
            except (FileNotFoundError, NotADirectoryError):
                stored_names = []
            for stored in stored_names:
                name, sequence, size = self._parse(stored)
                self._versions.setdefault(name, []).append((sequence, -1 if size is None else size, stored))
            for entries in self._versions.values():
                entries.sort()
        return self._versions

    def _newest_complete(self, name: str) -> str | None:
        for _sequence, size, stored in reversed(self.versions().get(name, [])):
            try:
                if size < 0 or default_storage.size(f"{self.prefix}/{stored}") == size:
                    return stored
            except (FileNotFoundError, OSError):
                continue
        return None

    def restore(self) -> int:
        """Fetch the mirrored files when the local folder has none (another host, a wiped disk)."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if any(self.output_dir.iterdir()):
            return 0
        restored = 0
        for name in sorted(self.versions()):
            stored = self._newest_complete(name)
            if stored is None:
                continue
            tmp = self.output_dir / f".{name}.part"
            with media_open_stream(f"{self.prefix}/{stored}") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            os.replace(tmp, self.output_dir / name)
            restored += 1
        self.sync(initial=True)
        return restored

    def _save(self, name: str, path: Path) -> None:
        """Store ``path`` as a new version of ``name``, then remove the older versions."""
        versions = self.versions().setdefault(name, [])
        sequence = max([time.time_ns(), *(v[0] + 1 for v in versions)])
        with open(path, "rb") as handle:  # the worker's own checkpoint file, streamed
            size = os.fstat(handle.fileno()).st_size
            stored = default_storage.save(f"{self.prefix}/{name}@{sequence}-{size}", File(handle))
        old, versions[:] = list(versions), [(sequence, size, PurePosixPath(stored).name)]
        for _sequence, _size, previous in old:
            default_storage.delete(f"{self.prefix}/{previous}")

    def _delete(self, name: str) -> None:
        for _sequence, _size, stored in self.versions().pop(name, []):
            default_storage.delete(f"{self.prefix}/{stored}")

    def sync(self, *, initial: bool = False) -> None:
        if not self.output_dir.is_dir():
            return
        present = set()
        # the pointer file last and rotated files deleted after, so storage always holds a complete resume
        for entry in sorted(os.scandir(self.output_dir), key=lambda e: (e.name == "last_checkpoint", e.name)):
            if not entry.is_file() or entry.name.startswith("."):
                continue
            present.add(entry.name)
            mtime = entry.stat().st_mtime
            if self.seen.get(entry.name) == mtime:
                continue
            self.seen[entry.name] = mtime
            if initial:
                continue
            self._save(entry.name, self.output_dir / entry.name)
        for gone in set(self.seen) - present:  # old checkpoints the engine rotated out
            self.seen.pop(gone)
            if not initial:
                self._delete(gone)

    def drop(self) -> None:
        try:
            _, names = default_storage.listdir(self.prefix)
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            default_storage.delete(f"{self.prefix}/{name}")


# --- data for the engine ------------------------------------------------------------------------------------
def _split_coco(coco: dict, *, split: str, center_id=None) -> dict:
    images = [i for i in coco["images"] if i["split"] == split and (center_id is None or i["center"] == str(center_id))]
    ids = {i["id"] for i in images}
    return {**coco, "images": images, "annotations": [a for a in coco["annotations"] if a["image_id"] in ids]}


def _finetune_options(options: dict, device: str):
    from inference.engine.finetune import FinetuneOptions

    names = {f.name for f in dataclasses.fields(FinetuneOptions)}
    values = {"iterations": options["iterations"], "base_lr": options["base_lr"],
              "checkpoint_period": options["checkpoint_period"], "device": device}
    if options.get("image_scale"):
        values["min_size_train"] = options["image_scale"]
    return FinetuneOptions(**{k: v for k, v in values.items() if k in names})


# --- run --------------------------------------------------------------------------------------------------
class JobLost(Exception):
    """The job stopped being this worker's while it ran."""


def _progress_writer(job: TrainingJob, worker_id: str, mirror: CheckpointMirror):
    state = {"losses": list(job.losses)}

    def on_progress(progress) -> None:
        point = {"iteration": int(progress.iteration),
                 **{k: round(float(v), 5) for k, v in (progress.losses or {}).items()}}
        losses = state["losses"]
        losses.append(point)
        if len(losses) > LOSS_POINTS_MAX:
            losses[:] = [*losses[:-1:2], losses[-1]]  # every other point, and always the newest
        mirror.sync()
        TrainingJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker_id=worker_id).update(
            iteration=int(progress.iteration), max_iter=int(progress.max_iter), losses=losses,
            seconds_per_iter=float(progress.seconds_per_iter), eta_seconds=float(progress.eta_seconds),
            heartbeat_at=timezone.now())

    return on_progress


def training_job_run(*, job_id, worker_id: str | None = None, device: str | None = None) -> str:
    """Run (or resume) a training job on this worker; returns what happened. Safe for any message."""
    from inference.engine.finetune import finetune

    worker_id = worker_id or worker_identity()
    job = training_job_claim(job_id=job_id, worker_id=worker_id)
    if job is None:
        return "skipped"
    device = device or settings.TRAINING_DEVICE
    root = work_dir(job.pk)
    output_dir = root / "output"
    mirror = CheckpointMirror(job.pk, output_dir)
    interval = max(0.5, settings.JOB_HEARTBEAT_TIMEOUT_SECONDS / 4)
    with Heartbeat(job.pk, worker_id, interval, model=TrainingJob) as heartbeat:
        try:
            restored = mirror.restore()
            TrainingJob.objects.filter(pk=job.pk).update(stage="training")
            coco = dataset_version_coco(job.dataset_version)
            train_json = dataset_version_materialise(version=job.dataset_version,
                                                     coco=_split_coco(coco, split="train"), root=root / "data")

            def should_stop() -> bool:
                return heartbeat.lost or TrainingJob.objects.filter(pk=job.pk, cancel_requested=True).exists()

            result = finetune(
                train_json=str(train_json), image_root=str(root / "data"), output_dir=str(output_dir),
                base_bundle=str(model_bundle_local_dir(job.base_model)) if job.base_model else None,
                options=_finetune_options(job.options, device), on_progress=_progress_writer(job, worker_id, mirror),
                should_stop=should_stop)
            mirror.sync()
            if result.resumed_from is not None or restored:
                TrainingJob.objects.filter(pk=job.pk).update(
                    resumed_from=[*job.resumed_from, result.resumed_from if result.resumed_from is not None else 0])
            if heartbeat.lost:
                raise JobLost(f"training job {job.pk} was taken from {worker_id}")
            if result.stopped:
                if _end(job, worker_id, JobStatus.CANCELLED):
                    mirror.drop()
                    shutil.rmtree(root, ignore_errors=True)
                return "cancelled"
            TrainingJob.objects.filter(pk=job.pk).update(stage="registering", iteration=result.iterations_done)
            # a retry after the candidate was registered (evaluation failed, worker died) keeps that candidate
            candidate = job.candidate or _register_candidate(job=job, result=result, root=root)
            TrainingJob.objects.filter(pk=job.pk).update(stage="evaluating", candidate=candidate)
            from portal.training.evaluation import model_card_evaluate

            model_card_evaluate(model_version=candidate, dataset_version=job.dataset_version, device=device)
            if heartbeat.lost:
                raise JobLost(f"training job {job.pk} was taken from {worker_id}")
            if not _end(job, worker_id, JobStatus.SUCCEEDED, candidate=candidate):
                return "lost"
            mirror.drop()
            shutil.rmtree(root, ignore_errors=True)
            return "succeeded"
        except JobLost as exc:
            log.warning("%s", exc)
            return "lost"
        except Exception as exc:
            log.exception("training job %s attempt %s failed", job.pk, job.attempts)
            return _attempt_failed(job, worker_id, f"{type(exc).__name__}: {exc}")


def _register_candidate(*, job: TrainingJob, result, root: Path) -> ModelVersion:
    """Bundle the trained weights and register them as a model version of the job's center (not active)."""
    from inference.engine.finetune import finetune_bundle
    from portal.mlmodels.services import model_register_bundle

    version = job.dataset_version
    summary = {
        "dataset": str(version), "dataset_version": str(version.pk), "manifest_sha256": version.manifest_sha256,
        "counts": version.counts, "base_model": str(job.base_model) if job.base_model else None,
        "options": job.options, "iterations_done": result.iterations_done, "training_job": str(job.pk),
    }
    bundle_dir = root / "bundle"
    if bundle_dir.exists():
        shutil.rmtree(bundle_dir)
    path = finetune_bundle(result, out_dir=str(bundle_dir), name=f"{job.center.code.lower()}-finetuned",
                           version=f"{timezone.localdate():%Y%m%d}-{str(job.pk)[:8]}",
                           metrics={"training_summary": summary})
    model_version = model_register_bundle(path=path, center=job.center, user=None, activate=False)
    merged = {**(model_version.training_summary or {}), **summary}  # the engine's data summary + the portal's
    ModelVersion.objects.filter(pk=model_version.pk).update(training_summary=merged)
    model_version.training_summary = merged
    return model_version


# --- sweeper ----------------------------------------------------------------------------------------------
def training_jobs_sweep_stale() -> dict[str, int]:
    """Re-queue running jobs whose heartbeat went stale (their checkpoints stay for the resume); send
    again the messages of queued jobs nobody picked up; finish cancelled ones."""
    now = timezone.now()
    requeued = resent = cancelled = 0
    for job in TrainingJob.objects.filter(Q(heartbeat_at__lt=stale_before()) | Q(heartbeat_at__isnull=True),
                                          status=JobStatus.RUNNING):
        with transaction.atomic():
            if job.cancel_requested:
                n = TrainingJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker_id=job.worker_id,
                                               heartbeat_at=job.heartbeat_at).update(
                    status=JobStatus.CANCELLED, finished_at=now, stage="")
                cancelled += n
                continue
            n = TrainingJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker_id=job.worker_id,
                                           heartbeat_at=job.heartbeat_at).update(
                status=JobStatus.QUEUED, worker_id="", queued_at=now, retry_at=None, stage="")
            if n:
                training_job_enqueue(job=job)
                requeued += 1
                log.warning("training job %s re-queued: worker %s silent since %s", job.pk, job.worker_id,
                            job.heartbeat_at)
    timeout = settings.JOB_HEARTBEAT_TIMEOUT_SECONDS
    for job in TrainingJob.objects.filter(status=JobStatus.QUEUED).filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now)):
        spacing = timeout * (2 ** min(max(job.enqueue_count - 1, 0), 6))
        if job.last_enqueued_at is None or job.last_enqueued_at < now - timedelta(seconds=spacing):
            with transaction.atomic():
                training_job_enqueue(job=job)
            resent += 1
    return {"requeued": requeued, "resent": resent, "cancelled": cancelled}


def training_progress(job: TrainingJob) -> dict:
    """The progress snapshot the job page polls."""
    elapsed = None
    if job.started_at:
        elapsed = ((job.finished_at or timezone.now()) - job.started_at).total_seconds()
    return {
        "id": str(job.pk), "status": job.status, "stage": job.stage, "iteration": job.iteration,
        "max_iter": job.max_iter, "losses": job.losses, "seconds_per_iter": job.seconds_per_iter,
        "eta_seconds": job.eta_seconds if job.status == JobStatus.RUNNING else None, "attempts": job.attempts,
        "resumed_from": job.resumed_from, "cancel_requested": job.cancel_requested,
        "error_message": job.error_message, "elapsed_seconds": elapsed,
        "candidate_id": str(job.candidate_id) if job.candidate_id else None,
        "active": job.status in UNFINISHED, "checked_at": time.time(),
    }
