"""Chaos: 100 jobs through real workers while pool children and main worker processes are SIGKILLed
mid-job. At the end every job succeeded exactly once, with the engine's detection counts."""
from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter

import pytest

from portal.audit.models import AuditEvent
from portal.jobs.models import InferenceJob, JobImage, JobImageStatus, JobStatus
from portal.results.models import Detection, ResultSet, ResultSetStatus
from portal.testing.jobs import make_image, make_session
from tests.helpers import REPO, wait_for
from tests.workers.conftest import expected_counts

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

JOBS = 100
IMAGES_PER_JOB = 2
SEEDS = list(range(10))
KILLS = 12


@pytest.fixture
def job_settings(job_settings):
    job_settings.JOB_MAX_ATTEMPTS = 5  # a job may be hit by a few kills; poison limit tested elsewhere
    return job_settings


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_no_job_is_lost_or_duplicated_when_workers_are_killed_mid_job(cast, tiny_model, workers):
    from portal.jobs.services import job_create

    rng = random.Random(7)
    expected = expected_counts(tiny_model, SEEDS)
    jobs, seeds_of = [], {}
    for i in range(JOBS):
        session = make_session(cast.a)
        seeds = [SEEDS[(i * IMAGES_PER_JOB + k) % len(SEEDS)] for k in range(IMAGES_PER_JOB)]
        images = [make_image(session, seed=s) for s in seeds]
        for image, seed in zip(images, seeds):
            seeds_of[image.pk] = seed
        jobs.append(job_create(session=session, user=cast.a.uploader))
    ids = [j.pk for j in jobs]
    started = time.monotonic()
    workers.start(2)

    kills = []
    while len(kills) < KILLS and InferenceJob.objects.filter(pk__in=ids, status__in=["queued", "running"]).exists():
        job = (InferenceJob.objects.filter(pk__in=ids, status=JobStatus.RUNNING, attempts__lt=4)
               .exclude(worker_id="").order_by("?").first())
        if job is None:
            time.sleep(0.02)
            continue
        child_pid = int(job.worker_id.rsplit(":", 1)[1])
        main_pids = {p.pid for p in workers.alive()}
        parent = _parent_pid(child_pid)
        kind = "main" if len(kills) % 2 else "child"
        if kind == "main" and parent not in main_pids:
            continue
        target = parent if kind == "main" else child_pid
        job.refresh_from_db()
        if job.status != JobStatus.RUNNING or not job.worker_id.endswith(f":{child_pid}"):
            continue  # finished meanwhile: not a kill "while running a job"
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            continue
        kills.append({"kind": kind, "pid": target, "job": str(job.pk), "status_at_kill": job.status,
                      "images_done_at_kill": job.images_done, "attempts_at_kill": job.attempts,
                      "t": round(time.monotonic() - started, 1)})
        if kind == "main":
            workers.start(1)  # the killed worker's replacement
            # its orphaned pool child may finish the job it holds; then it exits with its group
        time.sleep(rng.uniform(0.8, 1.6))

    wait_for(lambda: not InferenceJob.objects.filter(pk__in=ids, status__in=["queued", "running"]).exists(),
             240, interval=0.5, what="all jobs to finish")
    elapsed = time.monotonic() - started

    statuses = Counter(InferenceJob.objects.filter(pk__in=ids).values_list("status", flat=True))
    succeed_events = Counter(AuditEvent.objects.filter(action="job.succeed", object_id__in=[str(i) for i in ids])
                             .values_list("object_id", flat=True))
    sets = Counter(ResultSet.objects.filter(job_id__in=ids).values_list("job_id", flat=True))
    wrong_counts = []
    for result_set in ResultSet.objects.filter(job_id__in=ids):
        n = Detection.objects.filter(result_set=result_set).count()
        if result_set.status != ResultSetStatus.COMPLETE or n != expected[seeds_of[result_set.image_id]]:
            wrong_counts.append((str(result_set.pk), result_set.status, n, expected[seeds_of[result_set.image_id]]))
    lost = [str(i) for i in ids if statuses and InferenceJob.objects.get(pk=i).status != JobStatus.SUCCEEDED]
    duplicated = [k for k, v in succeed_events.items() if v > 1] + [str(k) for k, v in sets.items()
                                                                       if v != IMAGES_PER_JOB]
    figures = {
        "jobs": JOBS, "images": JOBS * IMAGES_PER_JOB, "kills": len(kills),
        "kills_child": sum(k["kind"] == "child" for k in kills), "kills_main": sum(k["kind"] == "main" for k in kills),
        "lost": len(lost), "duplicated": len(duplicated), "wrong_detection_counts": len(wrong_counts),
        "statuses": dict(statuses), "max_attempts": max(InferenceJob.objects.filter(pk__in=ids)
                                                      .values_list("attempts", flat=True)),
        "retried_jobs": InferenceJob.objects.filter(pk__in=ids, attempts__gt=1).count(),
        "seconds": round(elapsed, 1), "kill_log": kills,
    }
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    (REPO / "test-artifacts" / "chaos.json").write_text(json.dumps(figures, indent=1))
    print("chaos:", {k: v for k, v in figures.items() if k != "kill_log"})

    assert len(kills) >= 10 and figures["kills_child"] >= 5 and figures["kills_main"] >= 5
    assert all(k["status_at_kill"] == "running" for k in kills)
    assert statuses == {"succeeded": JOBS}, statuses
    assert all(succeed_events[str(i)] == 1 for i in ids), "a job succeeded more than once"
    assert not lost and not duplicated and not wrong_counts, (lost, duplicated, wrong_counts[:5])
    assert JobImage.objects.filter(job_id__in=ids, status=JobImageStatus.DONE).count() == JOBS * IMAGES_PER_JOB
