"""Helpers for tests that start real processes (web server, Celery workers)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent  # the environment running the tests (its celery, its python)


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_group(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGTERM the process group of ``proc`` (started with ``start_new_session=True``), then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return proc.returncode


def start_celery_worker(env: dict, *, queues: str = "cpu,gpu", concurrency: int = 1, pool: str = "prefork",
                        name: str = "test", log_path: Path | None = None, extra: list[str] | None = None):
    """Start a real Celery worker process of this project; returns the Popen (own process group)."""
    cmd = [
        str(VENV_BIN / "celery"), "-A", "workers.celery_app", "worker", "--queues", queues,
        "--concurrency", str(concurrency), "--pool", pool, "--hostname", f"{name}@%h",
        "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ] + (extra or [])
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; raise AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
