"""Celery tasks: thin, idempotent, taking ids and calling one service each."""
from __future__ import annotations

import os
import socket

from workers.celery_app import app


@app.task(name="workers.tasks.smoke")
def smoke(value: int) -> dict:
    """Round trip through broker and worker: returns ``value * 2`` and who computed it."""
    return {"value": value * 2, "worker": f"{socket.gethostname()}:{os.getpid()}"}
