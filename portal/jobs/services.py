"""Inference jobs: create, enqueue (after commit), claim, run, cancel, sweep. The database is the truth.

A job is claimed by one worker with a conditional update (``queued`` → ``running``); each of its images
is then claimed the same way and kept alive by a heartbeat (a thread updating ``heartbeat_at``). A worker
that dies leaves a ``running`` job whose heartbeat stops: the redelivered message takes it over at once
when the dead worker was on this host (its pid is gone), and ``jobs_sweep_stale`` re-queues it after
``JOB_HEARTBEAT_TIMEOUT_SECONDS`` otherwise — so recovery never waits for the broker's visibility timeout.
A message may arrive twice or late: every step checks the state first, so a duplicate does nothing.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.audit.services import audit_record
from portal.centers.access import user_may
from portal.centers.policy import Action
from portal.core.errors import Conflict, DomainError
from portal.imaging.models import Image, ImageSession, ImageStatus
from portal.imaging.services import image_status_set
from portal.jobs.models import InferenceJob, JobImage, JobImageStatus, JobStatus
from portal.jobs.signals import job_finished_send
from portal.mlmodels.models import ModelVersion
from portal.mlmodels.selectors import model_active_for_center

log = logging.getLogger(__name__)

UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)
ERROR_MAX = 2000


# --- parameters ---------------------------------------------------------------------------------------
PARAMETER_SPEC = {
    "score_threshold": (float, 0.0, 1.0),  # drop detections scored below (after the model's own threshold)
    "tile_size": (int, 256, 8192),  # images with a side above this are predicted in overlapping tiles
}


def job_parameters_clean(parameters: dict | None) -> dict:
    """Validate job parameters; unknown keys and out-of-range values are refused."""
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(PARAMETER_SPEC))
    if unknown:
        raise DomainError(_("Unknown job parameters."), extra={"unknown": unknown, "allowed": sorted(PARAMETER_SPEC)})
    clean = {}
    for key, value in parameters.items():
        kind, low, high = PARAMETER_SPEC[key]
        if value is None:
            continue
        try:
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            value = kind(value)
        except (TypeError, ValueError):
            raise DomainError(_('Parameter %(key)s must be a number.') % {"key": key}, extra={"parameter": key})
        if not (low <= value <= high):
            raise DomainError(_('Parameter %(key)s must be between %(low)s and %(high)s.') % {"key": key, "low": low, "high": high}, extra={"parameter": key})
        clean[key] = value
    return clean


# --- identity of this worker process ------------------------------------------------------------------
def worker_identity() -> str:
    """``host:pid`` of this process (computed each time: pool children are forked)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_is_dead(worker_id: str) -> bool:
    """True only when ``worker_id`` names a process of this host that no longer exists (or is a zombie).

    Workers on other hosts are never declared dead here; their heartbeat going stale is the signal.
    """
    host, _, pid_text = (worker_id or "").rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


# --- create and enqueue ---------------------------------------------------------------------------------
def _audit_job(job: InferenceJob, action: str, *, actor=None, before=None, after=None, request=None) -> None:
    audit_record(actor=actor, action=action, center=job.center_id, obj=job, before=before, request=request,
                 after=after if after is not None else {"status": job.status, "session": str(job.session_id)})


def job_create(
    *,
    session: ImageSession,
    user,
    model_version: ModelVersion | None = None,
    images: list[Image] | None = None,
    image_ids: list | None = None,
    parameters: dict | None = None,
    triggered_by: str = "user",
    request=None,
) -> InferenceJob:
    """Create a queued job for ``images`` of ``session`` (default: all) and send its message after commit.

    ``model_version`` defaults to the center's active model (or the site default). Refused when the
    user may not start analyses in the session's center, when no model applies, or when another
    unfinished job already covers one of the images with the same model.
    """
    if user is not None and not user_may(user, session.center_id, Action.JOBS_RUN):
        raise DomainError(_("You may not start analyses in this center."), status_code=403)
    model_version = model_version or model_active_for_center(center=session.center)
    if model_version is None:
        raise DomainError(_("No model is active for this center; register or activate one first."))
    if model_version.center_id not in (None, session.center_id):
        raise DomainError(_("This model belongs to another center."))
    clean = job_parameters_clean(parameters)
    with transaction.atomic():
        session = ImageSession.objects.select_for_update().get(pk=session.pk)
        if images is None and image_ids is None:
            chosen = list(session.images.all())
        else:
            ids = {img.pk for img in images} if images is not None else set(image_ids)
            chosen = list(session.images.filter(pk__in=ids))
            if len(chosen) != len(ids):
                raise DomainError(_("Some images are not part of this session."), status_code=404,
                                  extra={"unknown": sorted(str(i) for i in ids - {c.pk for c in chosen})})
        if not chosen:
            raise DomainError(_("The session has no images to analyse."))
        busy = JobImage.objects.filter(
            job__status__in=UNFINISHED, job__model_version=model_version, image__in=chosen
        ).values_list("job_id", flat=True).first()
        if busy is not None:
            raise Conflict(_("An unfinished job already analyses these images with this model."),
                           extra={"job_id": str(busy)})
        now = timezone.now()
        job = InferenceJob(
            center_id=session.center_id, session=session, model_version=model_version, parameters=clean,
            status=JobStatus.QUEUED, images_total=len(chosen), queued_at=now, triggered_by=triggered_by,
            queue=settings.INFERENCE_QUEUE, created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        job.full_clean()
        job.save()
        JobImage.objects.bulk_create([JobImage(job=job, image=img) for img in chosen])
        image_status_set(image_ids=[c.pk for c in chosen], status=ImageStatus.QUEUED)
        _audit_job(job, "job.create", actor=user, after={
            "status": job.status, "session": str(session.pk), "model_version": str(model_version.pk),
            "images": len(chosen), "parameters": clean, "triggered_by": triggered_by,
        }, request=request)
        job_enqueue(job=job)
    return job


def _send(job_id: str, countdown: float | None, *, queue: str) -> None:
    from workers.celery_app import app

    try:
        app.send_task(
            "workers.tasks.run_inference_job", args=[job_id], queue=queue,
            countdown=countdown, retry=True, ignore_result=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0},
        )
    except Exception:  # broker down: the database keeps the job queued and the sweeper sends it again
        log.warning("could not send job %s to the broker; the sweeper will retry", job_id, exc_info=True)


def job_enqueue(*, job: InferenceJob, countdown: float | None = None) -> None:
    """Record that a message is sent and send it once the current transaction commits.

    The message carries only the job id; the worker reloads everything from the database. It goes to the
    job's own queue (``job.queue``, chosen by the host that created the job), whatever this host's
    ``INFERENCE_QUEUE`` says: a retry or a re-send by a sweeper elsewhere keeps the job on its queue.
    """
    InferenceJob.objects.filter(pk=job.pk).update(
        last_enqueued_at=timezone.now(), enqueue_count=F("enqueue_count") + 1
    )
    job_id = str(job.pk)
    queue = job.queue
    transaction.on_commit(lambda: _send(job_id, countdown, queue=queue))


def jobs_on_images_stored(*, session: ImageSession, images: list[Image], user, **_signal) -> InferenceJob | None:
    """Receiver of ``portal.imaging.signals.images_stored`` (sent after commit): analyse new images with
    the center's model.

    Does nothing when ``settings.INFERENCE_AUTO_ON_UPLOAD`` is off or no model is active; never raises
    into the upload (a refused job is logged).
    """
    if not settings.INFERENCE_AUTO_ON_UPLOAD or not images:
        return None
    model_version = model_active_for_center(center=session.center)
    if model_version is None:
        return None
    try:
        # The portal starts this job, not the uploader: no role check; the job records who uploaded.
        job = job_create(session=session, user=None, model_version=model_version, images=list(images),
                         triggered_by="upload")
    except DomainError as exc:
        log.info("no automatic job for session %s: %s", session.pk, exc.message)
        return None
    if getattr(user, "is_authenticated", False):
        InferenceJob.objects.filter(pk=job.pk).update(created_by=user)
        job.created_by = user
    return job


# --- cancel -----------------------------------------------------------------------------------------------
def _release_images(job: InferenceJob) -> None:
    """Images of a job that ended without analysing them go back to their previous state."""
    for ji in job.job_images.exclude(status=JobImageStatus.DONE).select_related("image"):
        analysed = ji.image.result_sets.filter(status="complete").exists()
        image_status_set(image_ids=[ji.image_id], status=ImageStatus.ANALYZED if analysed else ImageStatus.UPLOADED)


@transaction.atomic
def job_cancel(*, job: InferenceJob, user, request=None) -> InferenceJob:
    """Cancel a queued job now; a running job stops before its next image."""
    if user is not None and not user_may(user, job.center_id, Action.JOBS_RUN):
        raise DomainError(_("You may not cancel analyses in this center."), status_code=403)
    job = InferenceJob.objects.select_for_update().get(pk=job.pk)
    if job.is_finished:
        raise Conflict(_('The job has already %(status)s.') % {"status": job.status}, extra={"status": job.status})
    before = {"status": job.status}
    if job.status == JobStatus.QUEUED:
        job.status = JobStatus.CANCELLED
        job.finished_at = timezone.now()
        job.cancel_requested = True
        job.save(update_fields=["status", "finished_at", "cancel_requested"])
        JobImage.objects.filter(job=job).exclude(status=JobImageStatus.DONE).update(status=JobImageStatus.PENDING)
        _release_images(job)
    else:
        job.cancel_requested = True
        job.save(update_fields=["cancel_requested"])
    _audit_job(job, "job.cancel", actor=user, before=before,
               after={"status": job.status, "cancel_requested": True}, request=request)
    return job


def _finish_cancelled(job_id, worker_id: str) -> bool:
    with transaction.atomic():
        n = InferenceJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, worker_id=worker_id).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now())
        if n:
            job = InferenceJob.objects.get(pk=job_id)
            JobImage.objects.filter(job=job, status=JobImageStatus.RUNNING).update(status=JobImageStatus.PENDING)
            _release_images(job)
            _audit_job(job, "job.cancelled")
            job_finished_send(job_id=job.pk, status=JobStatus.CANCELLED)
    return bool(n)


# --- claim ------------------------------------------------------------------------------------------------
def stale_before() -> datetime:
    """Heartbeats older than this mean the worker is gone (``JOB_HEARTBEAT_TIMEOUT_SECONDS`` ago)."""
    return timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT_SECONDS)


def job_row_claim(*, model, job_id, worker_id: str, select_related: tuple[str, ...] = (),
                  give_up: Callable[[Any, str], Any], on_takeover: Callable[[], None] | None = None,
                  on_cancel_queued: Callable[[Any], None] | None = None) -> Any | None:
    """Claim a row of a job model (``InferenceJob``, ``TrainingJob``) for ``worker_id``; the job or None.

    The model needs ``status``, ``worker_id``, ``heartbeat_at``, ``attempts``, ``retry_at``,
    ``cancel_requested``, ``started_at`` and ``error_message``. A queued job (due for its retry) is claimed
    by a conditional update (1 row = mine, 0 = not mine); a running job is taken over only when its worker
    is gone (dead pid on this host, or heartbeat older than the timeout), and then ``on_takeover`` runs in
    the same transaction. A queued job whose cancel was requested goes to ``on_cancel_queued``. Each claim
    counts an attempt; past ``JOB_MAX_ATTEMPTS`` ``give_up(job, reason)`` ends the job and None is returned.
    """
    now = timezone.now()
    claimed = model.objects.filter(
        Q(retry_at__isnull=True) | Q(retry_at__lte=now + timedelta(seconds=1)),
        pk=job_id, status=JobStatus.QUEUED, cancel_requested=False,
    ).update(status=JobStatus.RUNNING, worker_id=worker_id, heartbeat_at=now, attempts=F("attempts") + 1,
             started_at=now)
    if not claimed:
        job = model.objects.filter(pk=job_id).first()
        if job is None:
            return None
        if job.status == JobStatus.QUEUED and job.cancel_requested and on_cancel_queued is not None:
            on_cancel_queued(job)
            return None
        if job.status != JobStatus.RUNNING or job.worker_id == worker_id:
            return None
        gone = worker_is_dead(job.worker_id) or job.heartbeat_at is None or job.heartbeat_at < stale_before()
        if not gone:
            return None
        with transaction.atomic():
            claimed = model.objects.filter(
                pk=job_id, status=JobStatus.RUNNING, worker_id=job.worker_id, heartbeat_at=job.heartbeat_at,
            ).update(worker_id=worker_id, heartbeat_at=now, attempts=F("attempts") + 1)
            if not claimed:
                return None
            if on_takeover is not None:
                on_takeover()
        log.warning("%s %s taken over from %s (worker gone)", model._meta.verbose_name, job_id, job.worker_id)
    job = model.objects.select_related(*select_related).get(pk=job_id)
    if job.attempts > settings.JOB_MAX_ATTEMPTS:
        reason = job.error_message or "its worker died while running it"
        give_up(job, f"Gave up after {job.attempts - 1} attempts; last error: {reason}")
        return None
    return job


def job_claim(*, job_id, worker_id: str) -> InferenceJob | None:
    """Claim an inference job for ``worker_id`` (see ``job_row_claim``); a take-over puts the images the
    gone worker was running back to pending, and a queued job whose cancel was requested is cancelled."""

    def images_back_to_pending() -> None:
        JobImage.objects.filter(job_id=job_id, status=JobImageStatus.RUNNING).update(
            status=JobImageStatus.PENDING, claimed_by="")

    return job_row_claim(
        model=InferenceJob, job_id=job_id, worker_id=worker_id, select_related=("model_version", "session"),
        give_up=lambda job, reason: _fail(job, worker_id, reason), on_takeover=images_back_to_pending,
        on_cancel_queued=lambda job: job_cancel(job=job, user=None))


def job_claim_image(*, job_image: JobImage, worker_id: str) -> bool:
    """Claim one image of a job this worker runs (pending, or running with a stale heartbeat)."""
    now = timezone.now()
    return bool(JobImage.objects.filter(
        Q(status=JobImageStatus.PENDING) | Q(status=JobImageStatus.RUNNING, claimed_by=worker_id)
        | Q(status=JobImageStatus.RUNNING, heartbeat_at__lt=stale_before()),
        pk=job_image.pk, job__status=JobStatus.RUNNING, job__worker_id=worker_id,
    ).update(status=JobImageStatus.RUNNING, claimed_by=worker_id, claimed_at=now, heartbeat_at=now,
             attempts=F("attempts") + 1))


# --- heartbeat --------------------------------------------------------------------------------------------
class Heartbeat:
    """A thread that keeps ``heartbeat_at`` of the job (and the current image) fresh while it runs.

    When the job is no longer this worker's (swept, taken over, finished), ``lost`` becomes True and
    the runner stops before writing anything else.
    """

    def __init__(self, job_id, worker_id: str, interval: float, *, model=None):
        self.job_id, self.worker_id, self.interval = job_id, worker_id, interval
        self.model = model or InferenceJob  # another job model with the same status/worker_id/heartbeat_at fields
        self.image_id = None
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)

    def beat(self) -> None:
        now = timezone.now()
        n = self.model.objects.filter(pk=self.job_id, status=JobStatus.RUNNING, worker_id=self.worker_id).update(
            heartbeat_at=now)
        if not n:
            self.lost = True
        if self.image_id is not None:
            JobImage.objects.filter(pk=self.image_id, claimed_by=self.worker_id).update(heartbeat_at=now)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.beat()
                except Exception:  # database briefly unavailable: try again next beat
                    log.warning("heartbeat of job %s failed", self.job_id, exc_info=True)
        finally:
            connection.close()


# --- run --------------------------------------------------------------------------------------------------
class JobLost(Exception):
    """The job stopped being this worker's while it ran (swept or taken over)."""


def _fail(job: InferenceJob, worker_id: str, error: str) -> bool:
    with transaction.atomic():
        n = InferenceJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker_id=worker_id).update(
            status=JobStatus.FAILED, finished_at=timezone.now(), error_message=error[:ERROR_MAX])
        if n:
            JobImage.objects.filter(job=job).exclude(status=JobImageStatus.DONE).update(
                status=JobImageStatus.FAILED, error_message=error[:ERROR_MAX])
            failed = JobImage.objects.filter(job=job, status=JobImageStatus.FAILED).values_list("image_id", flat=True)
            image_status_set(image_ids=failed, status=ImageStatus.FAILED)
            job.refresh_from_db()
            _audit_job(job, "job.fail", after={"status": job.status, "error": error[:500], "attempts": job.attempts})
            job_finished_send(job_id=job.pk, status=JobStatus.FAILED)
    return bool(n)


def _attempt_failed(job: InferenceJob, worker_id: str, error: str) -> str:
    """Retry with exponential backoff, or fail the job after ``JOB_MAX_ATTEMPTS`` attempts."""
    job.refresh_from_db(fields=["attempts"])
    if job.attempts >= settings.JOB_MAX_ATTEMPTS:
        _fail(job, worker_id, f"Failed after {job.attempts} attempts: {error}")
        return "failed"
    backoff = settings.JOB_RETRY_BACKOFF_SECONDS * (2 ** (job.attempts - 1))
    with transaction.atomic():
        n = InferenceJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker_id=worker_id).update(
            status=JobStatus.QUEUED, worker_id="", queued_at=timezone.now(), error_message=error[:ERROR_MAX],
            retry_at=timezone.now() + timedelta(seconds=backoff))
        if n:
            JobImage.objects.filter(job=job, status=JobImageStatus.RUNNING, claimed_by=worker_id).update(
                status=JobImageStatus.PENDING, error_message=error[:ERROR_MAX])
            job_enqueue(job=job, countdown=backoff)
    return "retrying"


def _store_image(*, job: InferenceJob, job_image: JobImage, worker_id: str, result_set, rows, seconds,
                 scale: dict | None = None) -> None:
    from portal.results.services import result_set_write

    with transaction.atomic():
        locked = JobImage.objects.select_for_update().get(pk=job_image.pk)
        if locked.status != JobImageStatus.RUNNING or locked.claimed_by != worker_id:
            raise JobLost(f"image {job_image.image_id} is no longer claimed by {worker_id}")
        if not InferenceJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker_id=worker_id).exists():
            raise JobLost(f"job {job.pk} is no longer run by {worker_id}")
        result_set_write(result_set=result_set, rows=rows, scale=scale)
        locked.status = JobImageStatus.DONE
        locked.seconds = seconds
        locked.error_message = ""
        locked.save(update_fields=["status", "seconds", "error_message"])
        done = JobImage.objects.filter(job=job, status=JobImageStatus.DONE).count()
        InferenceJob.objects.filter(pk=job.pk).update(images_done=done, heartbeat_at=timezone.now())
        image_status_set(image_ids=[job_image.image_id], status=ImageStatus.ANALYZED)


def _finish_succeeded(job: InferenceJob, worker_id: str) -> bool:
    with transaction.atomic():
        n = InferenceJob.objects.filter(
            pk=job.pk, status=JobStatus.RUNNING, worker_id=worker_id
        ).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now(), error_message="", retry_at=None)
        if n:
            job.refresh_from_db()
            _audit_job(job, "job.succeed", after={"status": job.status, "images": job.images_done,
                                                  "attempts": job.attempts, "worker": worker_id})
            job_finished_send(job_id=job.pk, status=JobStatus.SUCCEEDED)
    return bool(n)


def _cancel_requested(job_id) -> bool:
    return InferenceJob.objects.filter(pk=job_id, cancel_requested=True).exists()


def job_run(*, job_id, worker_id: str | None = None, device: str | None = None) -> str:
    """Run a job to its end on this worker; returns what happened (``succeeded``, ``skipped``, ...).

    Safe to call for any message, any number of times: a job that is not claimable is skipped, and
    images already done are not analysed again.
    """
    from portal.jobs.inference import ModelRefused, image_rgb_uint8, predictor_for
    from portal.results.services import detections_from_prediction, result_set_start, scale_from_prediction

    worker_id = worker_id or worker_identity()
    job = job_claim(job_id=job_id, worker_id=worker_id)
    if job is None:
        return "skipped"
    interval = max(0.5, settings.JOB_HEARTBEAT_TIMEOUT_SECONDS / 4)
    threshold = job.parameters.get("score_threshold")
    predict_options = {"tile_size": job.parameters["tile_size"]} if job.parameters.get("tile_size") else {}
    with Heartbeat(job.pk, worker_id, interval) as heartbeat:
        try:
            predictor = predictor_for(model_version=job.model_version, device=device or settings.INFERENCE_DEVICE)
            pending = (job.job_images.exclude(status=JobImageStatus.DONE)
                       .select_related("image", "image__session").order_by("id"))
            for job_image in pending:
                if heartbeat.lost:
                    raise JobLost(f"job {job.pk} was taken from {worker_id}")
                if _cancel_requested(job.pk):
                    _finish_cancelled(job.pk, worker_id)
                    return "cancelled"
                if not job_claim_image(job_image=job_image, worker_id=worker_id):
                    raise JobLost(f"image {job_image.image_id} could not be claimed by {worker_id}")
                heartbeat.image_id = job_image.pk
                image_status_set(image_ids=[job_image.image_id], status=ImageStatus.ANALYZING)
                started = time.perf_counter()
                image = job_image.image
                result_set = result_set_start(job=job, image=image)
                um_per_px = image.um_per_px or image.session.um_per_px
                prediction = predictor.predict(image_rgb_uint8(image), um_per_px=um_per_px, **predict_options)
                rows = detections_from_prediction(prediction, class_names=job.model_version.class_names,
                                                  score_threshold=threshold)
                _store_image(job=job, job_image=job_image, worker_id=worker_id, result_set=result_set,
                             rows=rows, seconds=time.perf_counter() - started,
                             scale=scale_from_prediction(prediction))
                heartbeat.image_id = None
            if _cancel_requested(job.pk) and job.job_images.exclude(status=JobImageStatus.DONE).exists():
                _finish_cancelled(job.pk, worker_id)
                return "cancelled"
            return "succeeded" if _finish_succeeded(job, worker_id) else "lost"
        except JobLost as exc:
            log.warning("%s", exc)
            return "lost"
        except ModelRefused as exc:  # unsafe weights: failing at once, a retry would refuse them again
            log.error("job %s: %s", job.pk, exc)
            _fail(job, worker_id, str(exc))
            return "failed"
        except Exception as exc:
            log.exception("job %s attempt %s failed", job.pk, job.attempts)
            return _attempt_failed(job, worker_id, f"{type(exc).__name__}: {exc}")


# --- sweeper ----------------------------------------------------------------------------------------------
def jobs_sweep_stale() -> dict[str, int]:
    """Re-queue running jobs whose heartbeat is older than ``JOB_HEARTBEAT_TIMEOUT_SECONDS`` and send
    again the messages of queued jobs that nobody picked up (a lost message, a restarted broker).

    Queued jobs are re-sent with exponential spacing (timeout × 2^sends), so a long backlog does not
    fill the broker with duplicates; a duplicate message is harmless anyway.
    """
    now = timezone.now()
    stale = stale_before()
    requeued = resent = cancelled = 0
    for job in InferenceJob.objects.filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True),
                                           status=JobStatus.RUNNING):
        with transaction.atomic():
            if job.cancel_requested:
                n = InferenceJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, worker_id=job.worker_id,
                                                heartbeat_at=job.heartbeat_at).update(
                    status=JobStatus.CANCELLED, finished_at=now)
                if n:
                    _release_images(job)
                    cancelled += 1
                continue
            n = InferenceJob.objects.filter(
                pk=job.pk, status=JobStatus.RUNNING, worker_id=job.worker_id, heartbeat_at=job.heartbeat_at,
            ).update(status=JobStatus.QUEUED, worker_id="", queued_at=now, retry_at=None)
            if n:
                JobImage.objects.filter(job=job, status=JobImageStatus.RUNNING).update(
                    status=JobImageStatus.PENDING, claimed_by="")
                job_enqueue(job=job)
                requeued += 1
                log.warning("job %s re-queued: worker %s silent since %s", job.pk, job.worker_id, job.heartbeat_at)
    timeout = settings.JOB_HEARTBEAT_TIMEOUT_SECONDS
    for job in InferenceJob.objects.filter(status=JobStatus.QUEUED).filter(
        Q(retry_at__isnull=True) | Q(retry_at__lte=now)
    ).only("id", "cancel_requested", "last_enqueued_at", "enqueue_count", "queue"):
        if job.cancel_requested:
            job_cancel(job=job, user=None)
            cancelled += 1
            continue
        spacing = timeout * (2 ** min(max(job.enqueue_count - 1, 0), 6))
        if job.last_enqueued_at is None or job.last_enqueued_at < now - timedelta(seconds=spacing):
            with transaction.atomic():
                job_enqueue(job=job)
            resent += 1
    return {"requeued": requeued, "resent": resent, "cancelled": cancelled}


def job_summary(job: InferenceJob) -> dict[str, Any]:
    """A small progress snapshot, shared by the API and the session page."""
    return {
        "id": str(job.pk), "status": job.status, "images_total": job.images_total,
        "images_done": job.images_done, "attempts": job.attempts, "error_message": job.error_message,
        "cancel_requested": job.cancel_requested,
    }
