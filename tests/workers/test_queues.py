"""Queues: a GPU host's worker (``--queues gpu,cpu``) takes every waiting ``gpu`` task before any ``cpu``
one (the broker's queue order is by priority, not round robin), and still helps with ``cpu``.

The tasks are sent and awaited by a separate client process (as a web host would), so nothing the test
process's Celery app cached from earlier tests (producer pools, result backends) is involved."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO, start_celery_worker, stop_process_group

pytestmark = [pytest.mark.worker]

SEND = "import django; django.setup(); from workers.tasks import smoke; import json; print(json.dumps([" \
       "r.id for r in [smoke.apply_async(args=[i], queue='cpu') for i in range(4)]" \
       " + [smoke.apply_async(args=[100 + i], queue='gpu') for i in range(4)]]))"
AWAIT = "import django, json, sys; django.setup(); from workers.celery_app import app; " \
        "results = [app.AsyncResult(i) for i in json.loads(sys.argv[1])]; [r.get(timeout=90) for r in results]; " \
        "print(json.dumps([r.date_done.isoformat() for r in results]))"


def test_a_gpu_worker_drains_the_gpu_queue_first_then_helps_with_cpu(broker, tmp_path):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings", CELERY_BROKER_URL=broker.url,
               CELERY_RESULT_BACKEND=broker.url, JOB_SWEEP_IN_WORKER="0", VAR_DIR=str(tmp_path / "var"))

    def client(code: str, *args: str) -> list:
        out = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=180)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    ids = client(SEND)  # 4 cpu tasks, then 4 gpu tasks, all waiting before any worker runs
    worker = start_celery_worker(env, queues="gpu,cpu", name="gpu", log_path=tmp_path / "worker.log")
    try:
        done = client(AWAIT, json.dumps(ids))
    finally:
        stop_process_group(worker)
    done_cpu, done_gpu = done[:4], done[4:]
    assert max(done_gpu) <= min(done_cpu), (done_gpu, done_cpu)
