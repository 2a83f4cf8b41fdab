"""Real-worker fixtures: a private redis-server, the test database shared with worker processes, a tiny
model, and a pool of ``celery -A workers.celery_app worker`` processes that tests can kill and restart."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, VENV_BIN, free_port, stop_process_group, wait_for

REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    """``redis-server --port <spare> --save '' --appendonly no``: nothing survives a restart."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=open(self.workdir / "redis.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port)
        wait_for(lambda: _ping(client), 10, what="redis-server")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self, down_seconds: float = 1.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


def _ping(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@pytest.fixture
def redis_server(tmp_path):
    if REDIS_SERVER is None:
        pytest.skip("external service missing: redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker(redis_server, monkeypatch):
    """Point this process's Celery app at the private Redis (the workers get it through the env).

    Celery's settings prefer the ``CELERY_BROKER_URL``/``CELERY_RESULT_BACKEND`` environment variables
    (set by CI) over ``app.conf``: they point at the private Redis too while the fixture lasts."""
    from workers.celery_app import app

    monkeypatch.setenv("CELERY_BROKER_URL", redis_server.url)
    monkeypatch.setenv("CELERY_RESULT_BACKEND", redis_server.url)

    saved = (app.conf.broker_url, app.conf.result_backend, app.conf.broker_transport_options)
    app.conf.broker_url = redis_server.url
    app.conf.result_backend = redis_server.url
    app.conf.broker_transport_options = {"visibility_timeout": 3600}
    _reset_pools(app)
    yield redis_server
    _reset_pools(app)
    app.conf.broker_url, app.conf.result_backend, app.conf.broker_transport_options = saved
    _reset_pools(app)


def _reset_pools(app) -> None:
    """Forget connections to the previous broker (kombu keeps producer pools in a global registry)."""
    from kombu import pools

    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()
    app._backend_cache = None
    if getattr(app._local, "backend", None) is not None:
        del app._local.backend


def database_url() -> str:
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def job_settings(settings, tmp_path):
    """Short timeouts for this process and the workers; storage in tmp."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_CACHE_DIR = tmp_path / "media-cache"
    settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 3
    settings.JOB_SWEEP_INTERVAL_SECONDS = 1
    settings.JOB_RETRY_BACKOFF_SECONDS = 0.5
    settings.JOB_MAX_ATTEMPTS = 3
    settings.INFERENCE_QUEUE = "cpu"
    return settings


class WorkerPool:
    """Worker processes of this project (each its own process group), for tests that kill them."""

    def __init__(self, env: dict, logdir: Path):
        self.env, self.logdir = env, logdir
        self.procs: list[subprocess.Popen] = []
        self.started = 0

    def start(self, n: int = 1) -> list[subprocess.Popen]:
        new = []
        for _ in range(n):
            self.started += 1
            name = f"w{self.started}"
            cmd = [str(VENV_BIN / "celery"), "-A", "workers.celery_app", "worker", "--queues", "cpu",
                   "--concurrency", "1", "--pool", "prefork", "--hostname", f"{name}@%h", "--loglevel", "INFO",
                   "--without-gossip", "--without-mingle", "--without-heartbeat"]
            log = open(self.logdir / f"{name}.log", "ab")
            proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            self.procs.append(proc)
            new.append(proc)
        return new

    def alive(self) -> list[subprocess.Popen]:
        return [p for p in self.procs if p.poll() is None]

    def stop_all(self) -> None:
        for proc in self.procs:
            try:
                stop_process_group(proc, timeout=15)
            except Exception:
                pass
            try:  # orphaned pool children stay in the group
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def workers(broker, job_settings, tmp_path):
    from portal.audit.services import audit_key

    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE="portal.settings", DATABASE_URL=database_url(),
        CELERY_BROKER_URL=broker.url, CELERY_RESULT_BACKEND=broker.url, CELERY_VISIBILITY_TIMEOUT="3600",
        MEDIA_ROOT=str(job_settings.MEDIA_ROOT), MEDIA_CACHE_DIR=str(job_settings.MEDIA_CACHE_DIR),
        VAR_DIR=str(tmp_path / "worker_var"), AUDIT_HMAC_KEY=audit_key().decode(),
        JOB_HEARTBEAT_TIMEOUT_SECONDS=str(job_settings.JOB_HEARTBEAT_TIMEOUT_SECONDS),
        JOB_SWEEP_INTERVAL_SECONDS=str(job_settings.JOB_SWEEP_INTERVAL_SECONDS),
        JOB_RETRY_BACKOFF_SECONDS=str(job_settings.JOB_RETRY_BACKOFF_SECONDS),
        JOB_MAX_ATTEMPTS=str(job_settings.JOB_MAX_ATTEMPTS), INFERENCE_QUEUE="cpu", INFERENCE_DEVICE="cpu",
        OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", LOG_LEVEL="INFO", PYTHONUNBUFFERED="1",
    )
    pool = WorkerPool(env, tmp_path)
    yield pool
    pool.stop_all()
    artifacts = REPO / "test-artifacts" / "workers"
    artifacts.mkdir(parents=True, exist_ok=True)
    for log in tmp_path.glob("w*.log"):
        shutil.copy(log, artifacts / log.name)


@pytest.fixture
def tiny_model(transactional_db, job_settings, tiny_bundle_dir):
    import torch

    from portal.jobs.inference import predictor_cache_clear
    from portal.mlmodels.services import model_register_bundle

    torch.set_num_threads(1)
    predictor_cache_clear()
    yield model_register_bundle(path=tiny_bundle_dir, user=None, activate=True)
    predictor_cache_clear()


def expected_counts(model_version, seeds) -> dict[int, int]:
    """Detections per synthetic image seed, by the engine in this process (same bundle, one thread)."""
    from inference.bundle import load_bundle
    from portal.jobs.inference import model_bundle_local_dir
    from portal.testing.jobs import synth_rgb

    predictor = load_bundle(model_bundle_local_dir(model_version)).predictor(device="cpu")
    return {seed: len(predictor.predict(synth_rgb(seed)[0], um_per_px=0.25)) for seed in seeds}
