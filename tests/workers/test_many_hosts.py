"""Web and workers as separate "hosts": each process has its own working directory and its own empty
MEDIA_ROOT; all media (images, display views, thumbnails, the model bundle) live in SeaweedFS, and
PostgreSQL and Redis are the only other shared parts. 40 images across 5 sessions are uploaded through the
web API (gunicorn); one worker is SIGKILLed (its whole process group, as if its host died) while it runs a
job; the other worker (consuming ``gpu`` then ``cpu``, as a GPU host would) reclaims the job. At the end
every image was analysed exactly once. Prints the figures (wall time, images/min, reclaimed jobs)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from portal.imaging.models import Image, ImageStatus
from portal.jobs.models import InferenceJob, JobImage, JobImageStatus, JobStatus
from portal.results.models import ResultSet, ResultSetStatus
from portal.testing.jobs import make_session, png_bytes, synth_rgb
from tests.helpers import REPO, VENV_BIN, free_port, stop_process_group, wait_for
from tests.workers.conftest import database_url, expected_counts

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SESSIONS = 5
IMAGES_PER_SESSION = 8


@pytest.fixture
def postgres(settings):
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        pytest.skip("external service missing: this test runs on PostgreSQL (set DATABASE_URL)")


def _host_env(*, host_dir: Path, broker_url: str, s3_env: dict, extra: dict | None = None) -> dict:
    """The environment of one host: shared database, broker and bucket; everything else its own."""
    from portal.audit.services import audit_key

    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("DATABASE_URL", "CELERY_", "PYTEST", "DJANGO_", "AWS_", "MEDIA_"))}
    return {
        **keep, **s3_env, "PYTHONPATH": str(REPO), "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": database_url(), "CELERY_BROKER_URL": broker_url, "CELERY_RESULT_BACKEND": broker_url,
        "CELERY_VISIBILITY_TIMEOUT": "3600", "AUDIT_HMAC_KEY": audit_key().decode(),
        "VAR_DIR": str(host_dir / "var"), "MEDIA_ROOT": str(host_dir / "media"),
        "AUDIT_CHECKPOINT_NAME": host_dir.name,
        "MEDIA_CACHE_DIR": str(host_dir / "cache"), "JOB_HEARTBEAT_TIMEOUT_SECONDS": "3",
        "JOB_SWEEP_INTERVAL_SECONDS": "1", "JOB_RETRY_BACKOFF_SECONDS": "0.5", "JOB_MAX_ATTEMPTS": "4",
        "INFERENCE_QUEUE": "cpu", "INFERENCE_DEVICE": "cpu", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO", **(extra or {}),
    }


def _start(cmd: list[str], *, host_dir: Path, env: dict, log_name: str) -> subprocess.Popen:
    host_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(cmd, cwd=host_dir, env=env, stdout=open(host_dir / log_name, "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _worker_cmd(name: str, queues: str) -> list[str]:
    return [str(VENV_BIN / "celery"), "-A", "workers.celery_app", "worker", "--queues", queues, "--concurrency",
            "1", "--pool", "prefork", "--hostname", f"{name}@%h", "--loglevel", "INFO", "--without-gossip",
            "--without-mingle", "--without-heartbeat"]


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_web_and_two_workers_share_only_the_database_the_broker_and_the_bucket(
        cast, postgres, broker, s3_storage, settings, tiny_bundle_dir, tmp_path):
    import requests

    from portal.accounts.services import api_token_issue
    from portal.jobs.inference import predictor_cache_clear
    from portal.mlmodels.services import model_register_bundle

    settings.AUDIT_CHECKPOINT_PATH = tmp_path / "runner-audit-checkpoint.json"  # this test's own, as each host's
    settings.AUDIT_CHECKPOINT_NAME = "test-runner"
    predictor_cache_clear()
    model = model_register_bundle(path=tiny_bundle_dir, user=None, activate=True)  # into the bucket
    seeds = list(range(SESSIONS * IMAGES_PER_SESSION))
    s3_env = {**s3_storage.env(), "AWS_LOCATION": settings.STORAGES["default"]["OPTIONS"]["location"]}
    hosts = {name: tmp_path / name for name in ("web", "cpu-host", "gpu-host")}

    port = free_port()
    procs: dict[str, subprocess.Popen] = {}
    boot_started = time.monotonic()
    try:
        procs["web"] = _start(
            [str(VENV_BIN / "gunicorn"), "portal.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
             "--threads", "2", "--timeout", "120"],
            host_dir=hosts["web"], env=_host_env(host_dir=hosts["web"], broker_url=broker.url, s3_env=s3_env),
            log_name="web.log")
        procs["cpu-host"] = _start(_worker_cmd("cpu", "cpu"), host_dir=hosts["cpu-host"], log_name="worker.log",
                                   env=_host_env(host_dir=hosts["cpu-host"], broker_url=broker.url, s3_env=s3_env))
        procs["gpu-host"] = _start(_worker_cmd("gpu", "gpu,cpu"), host_dir=hosts["gpu-host"],
                                   log_name="worker.log",
                                   env=_host_env(host_dir=hosts["gpu-host"], broker_url=broker.url, s3_env=s3_env))
        base = f"http://127.0.0.1:{port}"

        def web_up():
            try:
                return requests.get(base + "/accounts/login/", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_for(web_up, 90, what="gunicorn")
        boot_s = time.monotonic() - boot_started
        token = api_token_issue(user=cast.a.uploader)
        started = time.monotonic()
        sessions = [make_session(cast.a) for _ in range(SESSIONS)]

        def upload(k: int) -> dict[str, int]:
            """One session's images in one request (sessions in parallel, as several uploaders would)."""
            batch = seeds[k * IMAGES_PER_SESSION:(k + 1) * IMAGES_PER_SESSION]
            files = [("files", (f"field-{s}.png", png_bytes(synth_rgb(s)[0]), "image/png")) for s in batch]
            response = requests.post(f"{base}/api/v1/sessions/{sessions[k].pk}/images/", files=files,
                                     timeout=120, headers={"Authorization": f"Token {token}"})
            assert response.status_code == 201, response.text[:2000]
            return {created["id"]: s for created, s in zip(response.json()["created"], batch)}

        with ThreadPoolExecutor(max_workers=SESSIONS) as pool:
            seed_of = {k: v for part in pool.map(upload, range(SESSIONS)) for k, v in part.items()}
        uploaded_s = time.monotonic() - started

        # kill the host whose worker runs a job first (its main process and pool child, as if it died)
        def running_job():
            return InferenceJob.objects.filter(status=JobStatus.RUNNING).exclude(worker_id="").first()

        job = wait_for(running_job, 120, interval=0.05, what="a running job")
        child = int(job.worker_id.rsplit(":", 1)[1])
        parent = _parent_pid(child)
        victim = next(name for name in ("cpu-host", "gpu-host") if procs[name].pid in (parent, child))
        os.killpg(procs[victim].pid, signal.SIGKILL)
        killed_job = job.pk

        def all_done():
            return (InferenceJob.objects.count() == SESSIONS
                    and not InferenceJob.objects.exclude(status=JobStatus.SUCCEEDED).exists())

        wait_for(all_done, 150, interval=0.25, what="every job to succeed after the kill")
        wall = time.monotonic() - started
    finally:
        for proc in procs.values():
            stop_process_group(proc, timeout=10)
        artifacts = REPO / "test-artifacts" / "many-hosts"
        artifacts.mkdir(parents=True, exist_ok=True)
        for name, host in hosts.items():
            for log in host.glob("*.log"):
                (artifacts / f"{name}-{log.name}").write_bytes(log.read_bytes())
        predictor_cache_clear()

    expected = expected_counts(model, seeds)  # the engine in this process, for the detection counts
    images = list(Image.objects.filter(center=cast.a.center))
    assert len(images) == SESSIONS * IMAGES_PER_SESSION
    assert all(image.status == ImageStatus.ANALYZED for image in images)
    for image in images:  # exactly one complete result set each, with the engine's detections
        result_sets = list(ResultSet.objects.filter(image=image))
        assert len(result_sets) == 1 and result_sets[0].status == ResultSetStatus.COMPLETE
        assert result_sets[0].detections.count() == expected[seed_of[str(image.pk)]]
    assert JobImage.objects.count() == len(images)
    assert not JobImage.objects.exclude(status=JobImageStatus.DONE).exists()
    reclaimed = InferenceJob.objects.filter(attempts__gt=1).count()
    assert InferenceJob.objects.get(pk=killed_job).attempts >= 2 and reclaimed >= 1

    for name, host in hosts.items():  # nothing went to any host's disk but its cache
        media = host / "media"
        assert not media.exists() or not any(media.rglob("*")), f"{name} wrote media to local disk"
    survivor = "gpu-host" if victim == "cpu-host" else "cpu-host"
    assert [*(hosts[survivor] / "cache" / "bundles").glob(f"{model.weights_sha256}-*/.complete")]
    assert not (hosts["web"] / "cache").exists() or not any((hosts["web"] / "cache").rglob("*.safetensors"))

    # Each host published its own audit checkpoint to the bucket; the chain agrees with every one.
    from portal.audit.verification import audit_verify

    verified = audit_verify()
    assert verified.ok, verified.problems
    assert "object audit/checkpoints/web.json" in verified.checkpoints, verified.checkpoints

    n = len(images)
    print(f"\nmany hosts: web up in {boot_s:.1f} s; {n} images, {SESSIONS} sessions uploaded through the web "
          f"in {uploaded_s:.1f} s; "
          f"all analysed in {wall:.1f} s wall ({60 * n / wall:.0f} images/min) with {victim} SIGKILLed "
          f"mid-job; {reclaimed} job(s) reclaimed; every image analysed exactly once")
