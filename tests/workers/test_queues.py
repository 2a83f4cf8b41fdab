"""Queues: a GPU host's worker (``--queues gpu,cpu``) takes every waiting ``gpu`` task before any ``cpu``
one (the broker's queue order is by priority, not round robin), and still helps with ``cpu``."""
from __future__ import annotations

import os

import pytest

from tests.helpers import start_celery_worker, stop_process_group

pytestmark = [pytest.mark.worker]


def test_a_gpu_worker_drains_the_gpu_queue_first_then_helps_with_cpu(broker, tmp_path):
    from workers.tasks import smoke

    cpu = [smoke.apply_async(args=[i], queue="cpu") for i in range(4)]
    gpu = [smoke.apply_async(args=[100 + i], queue="gpu") for i in range(4)]
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings", CELERY_BROKER_URL=broker.url,
               CELERY_RESULT_BACKEND=broker.url, JOB_SWEEP_IN_WORKER="0", VAR_DIR=str(tmp_path / "var"))
    worker = start_celery_worker(env, queues="gpu,cpu", name="gpu", log_path=tmp_path / "worker.log")
    try:
        for result in gpu + cpu:
            result.get(timeout=90)
    finally:
        stop_process_group(worker)
    done_gpu = [r.date_done for r in gpu]
    done_cpu = [r.date_done for r in cpu]
    assert all(d is not None for d in done_gpu + done_cpu)
    assert max(done_gpu) <= min(done_cpu), (done_gpu, done_cpu)
