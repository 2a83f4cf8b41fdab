"""End-to-end throughput of inference jobs vs the engine alone.

    .venv/bin/python benchmarks/bench_jobs.py --images 64 --workers 2 [--per-job 4] [--size 128]

Starts its own ``redis-server`` (spare port, no persistence) and K ``celery -A workers.celery_app worker``
processes (concurrency 1, one torch thread each), creates N synthetic images in sessions of
``--per-job`` images, one job each, and times from the first job's creation to the last job's
success. The engine alone runs the same images in this process (one thread), so
``ideal = engine images/s × K`` is what the workers could reach with zero portal overhead.
The database is a throw-away SQLite file unless ``--database-url`` names another (a test database).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-job", type=int, default=4)
    parser.add_argument("--size", type=int, default=128, help="image side in px (the tiny model resizes to 128)")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_jobs_"))
    from tests.helpers import free_port

    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    env = {
        "DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}",
        "CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker, "VAR_DIR": str(tmp / "var"),
        "MEDIA_ROOT": str(tmp / "media"), "MEDIA_CACHE_DIR": str(tmp / "media-cache"),
        "AUDIT_HMAC_KEY": "bench-only-key", "INFERENCE_AUTO_ON_UPLOAD": "0", "INFERENCE_QUEUE": "cpu",
        "JOB_HEARTBEAT_TIMEOUT_SECONDS": "30", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "DJANGO_SETTINGS_MODULE": "portal.settings", "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    redis_proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL,
                                  start_new_session=True)
    procs: list[subprocess.Popen] = []
    try:
        import django

        django.setup()
        import torch
        from django.core.management import call_command

        torch.set_num_threads(1)
        call_command("migrate", verbosity=0)
        from portal.centers.models import Role
        from portal.centers.services import center_create, membership_grant
        from portal.jobs.models import InferenceJob, JobStatus
        from portal.jobs.services import job_create
        from portal.mlmodels.services import model_register_bundle
        from portal.testing.cast import CenterCast, make_user
        from portal.testing.jobs import make_image, make_session, synth_rgb, tiny_bundle

        center = center_create(code="BN", name="Bench")
        uploader = make_user("bench_uploader")
        membership_grant(user=uploader, center=center, role=Role.UPLOADER)
        model = model_register_bundle(path=tiny_bundle(tmp / "tiny"), activate=True)
        cc = CenterCast(center=center, users={"uploader": uploader})

        # the engine alone, same images, this process, one thread
        from inference.bundle import load_bundle
        from portal.jobs.inference import model_bundle_local_dir

        predictor = load_bundle(model_bundle_local_dir(model)).predictor(device="cpu")
        rgbs = [synth_rgb(i % 16, args.size)[0] for i in range(args.images)]
        predictor.predict(rgbs[0], um_per_px=0.25)  # warm-up
        t0 = time.perf_counter()
        for rgb in rgbs:
            predictor.predict(rgb, um_per_px=0.25)
        engine_ips = args.images / (time.perf_counter() - t0)

        sessions = []
        for start in range(0, args.images, args.per_job):
            session = make_session(cc)
            for i in range(start, min(args.images, start + args.per_job)):
                make_image(session, rgb=rgbs[i])
            sessions.append(session)

        worker_env = dict(os.environ)
        for k in range(args.workers):
            procs.append(subprocess.Popen(
                [str(REPO / ".venv" / "bin" / "celery"), "-A", "workers.celery_app", "worker", "--queues", "cpu",
                 "--concurrency", "1", "--hostname", f"bench{k}@%h", "--loglevel", "WARNING",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=REPO, env=worker_env, stdout=open(tmp / f"worker{k}.log", "ab"), stderr=subprocess.STDOUT,
                start_new_session=True))
        # warm the workers (process start, Django, torch, model load) outside the timing
        warm = make_session(cc)
        make_image(warm, rgb=rgbs[0])
        warm_jobs = [job_create(session=warm, user=uploader)]
        for _ in range(args.workers - 1):
            extra = make_session(cc)
            make_image(extra, rgb=rgbs[0])
            warm_jobs.append(job_create(session=extra, user=uploader))
        _wait(InferenceJob, [j.pk for j in warm_jobs], JobStatus, 300)

        t0 = time.perf_counter()
        jobs = [job_create(session=s, user=uploader) for s in sessions]
        _wait(InferenceJob, [j.pk for j in jobs], JobStatus, 1800)
        wall = time.perf_counter() - t0
        failed = InferenceJob.objects.filter(pk__in=[j.pk for j in jobs]).exclude(status=JobStatus.SUCCEEDED).count()
        e2e_ips = args.images / wall
        ideal = engine_ips * args.workers
        print(f"images={args.images} jobs={len(jobs)} workers={args.workers} size={args.size}px "
              f"cpus={os.cpu_count()} failed={failed}")
        print(f"engine alone (1 process, 1 thread): {engine_ips:6.2f} images/s")
        print(f"ideal with {args.workers} workers (engine x K):  {ideal:6.2f} images/s")
        print(f"end to end (broker + {args.workers} workers + DB): {e2e_ips:6.2f} images/s  "
              f"= {100 * e2e_ips / ideal:5.1f}% of ideal, {wall:.1f}s wall")
        return 0 if failed == 0 else 1
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(20)
            except Exception:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except Exception:
                    pass
        redis_proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def _wait(model, ids, status, timeout):
    deadline = time.monotonic() + timeout
    while model.objects.filter(pk__in=ids, status__in=[status.QUEUED, status.RUNNING]).exists():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for jobs")
        time.sleep(0.1)


if __name__ == "__main__":
    raise SystemExit(main())
