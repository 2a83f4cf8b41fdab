"""What the jobs app announces. Receivers subscribe in an ``AppConfig.ready()``."""
from __future__ import annotations

from django.dispatch import Signal

job_finished = Signal()
"""Sent after the transaction that ended a job commits (succeeded, failed or cancelled); keyword
arguments ``job_id`` and ``status``. A receiver's error is logged and never reaches the worker."""


def job_finished_send(*, job_id, status: str) -> None:
    """Announce, once the current transaction commits, that a job ended."""
    import logging

    from django.db import transaction

    def send() -> None:
        for receiver, result in job_finished.send_robust(sender=None, job_id=job_id, status=status):
            if isinstance(result, Exception):
                logging.getLogger(__name__).error("job_finished receiver %r failed: %s", receiver, result,
                                                  exc_info=result)

    transaction.on_commit(send)
