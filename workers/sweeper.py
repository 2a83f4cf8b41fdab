"""A sweeper thread in each worker's main process, besides the beat task.

Beat's ``sweep_stale_jobs`` message waits in the same FIFO queue as the jobs (prefetch 1), so behind a
backlog it comes late; this thread calls ``jobs_sweep_stale`` every ``JOB_SWEEP_INTERVAL_SECONDS``
whatever the queue holds. Several workers sweeping at once is harmless: every change is a conditional
update.
"""
from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown

log = logging.getLogger(__name__)
_stop = threading.Event()


def _loop(interval: float) -> None:
    from django.db import connection

    from portal.centers.rls import system_scope
    from portal.jobs.services import jobs_sweep_stale
    from portal.training.services import training_jobs_sweep_stale

    while not _stop.wait(interval):
        try:
            with system_scope("sweeper"):
                outcome = {**jobs_sweep_stale(),
                           **{f"training_{k}": v for k, v in training_jobs_sweep_stale().items()}}
            if any(outcome.values()):
                log.warning("sweeper: %s", outcome)
        except Exception:  # the database or broker briefly away: next round
            log.warning("sweeper round failed", exc_info=True)
            connection.close()
    connection.close()


@worker_ready.connect
def start_sweeper(**_kwargs) -> None:
    from django.conf import settings

    if not settings.JOB_SWEEP_IN_WORKER:
        return
    _stop.clear()
    threading.Thread(target=_loop, args=(float(settings.JOB_SWEEP_INTERVAL_SECONDS),), name="job-sweeper",
                     daemon=True).start()


@worker_shutdown.connect
def stop_sweeper(**_kwargs) -> None:
    _stop.set()
