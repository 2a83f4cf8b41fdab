"""A task goes through the configured broker to a real worker process and its result comes back."""
from __future__ import annotations

import os

import pytest

from tests.helpers import start_celery_worker, stop_process_group


@pytest.mark.worker
def test_smoke_task_round_trips_through_real_broker_and_worker(tmp_path):
    from workers.tasks import smoke

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings")
    worker = start_celery_worker(env, name="smoke", log_path=tmp_path / "worker.log")
    try:
        result = smoke.apply_async(args=[21], queue="cpu")
        payload = result.get(timeout=90)
    finally:
        stop_process_group(worker)
    assert payload["value"] == 42
    # computed in the worker process, not here
    assert not payload["worker"].endswith(f":{os.getpid()}")
