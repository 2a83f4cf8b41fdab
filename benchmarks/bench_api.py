"""API throughput and latency against a real server process: the session list and image thumbnails
(audited, and with the audit call switched off in the server for comparison), at N concurrent clients.

    .venv/bin/python benchmarks/bench_api.py --database-url postgres://postgres@127.0.0.1:5432/bench \
        [--repo PATH] [--clients 20] [--seconds 15] [--workers 3]

The script creates the database named in ``--database-url`` afresh (dropping it first: use a scratch
name), migrates it, seeds one center with 60 sessions of 3 images (thumbnails on disk) and an API token,
starts gunicorn on the code of ``--repo`` (default: this checkout; point it at another checkout to
measure before/after on the same machine), and prints one row per case: req/s, p50/p95/p99 in ms and
errors. ``thumbnails-unaudited`` runs a second server whose ``image_data_read_record`` does nothing
(``benchmarks/bench_api_wsgi.py``): the price of the audit trail. Everything runs in a temporary folder.
Under ``--app-role NAME`` the server connects as that role (created NOLOGIN-less: LOGIN, no password,
trust auth on 127.0.0.1 assumed), as a production deployment under row-level security does.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]

SEED = r"""
import io, uuid
from datetime import date, timedelta
from django.core.files.base import ContentFile
from PIL import Image as PILImage
from rest_framework.authtoken.models import Token
from portal.testing.cast import build_cast
from portal.testing.review import make_image, make_session

cast = build_cast()
buf = io.BytesIO(); PILImage.new("RGB", (256, 192), (90, 90, 90)).save(buf, format="PNG"); thumb = buf.getvalue()
image_ids = []
for k in range(60):
    session = make_session(cast.a, acquisition_date=date(2024, 1, 1) + timedelta(days=k))
    for _ in range(3):
        image = make_image(cast.a, session=session, width=64, height=48)
        image.thumbnail_file.save("t.png", ContentFile(thumb), save=True)
        image_ids.append(str(image.pk))
token = Token.objects.create(user=cast.a.uploader)
print("SEED " + json.dumps({"token": token.key, "images": image_ids}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], env: dict, cwd: Path) -> str:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = f"host={parsed.hostname or '127.0.0.1'} port={parsed.port or 5432} user={parsed.username or 'postgres'} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def start_server(repo: Path, env: dict, workers: int, unaudited: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server_env = {**env, "PYTHONPATH": f"{repo}:{ROOT / 'benchmarks'}"}
    if unaudited:
        server_env["BENCH_UNAUDITED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "bench_api_wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--worker-class", "sync", "--backlog", "256", "--log-level", "warning",
         "--keep-alive", "30"],
        cwd=repo, env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse()  # any answer: the server is up (a checkout older than /healthz gives 404)
            return proc, port
        except OSError:
            time.sleep(0.3)
    proc.kill()
    sys.exit("gunicorn did not answer /healthz: " + (proc.stderr.read().decode()[-2000:] if proc.stderr else ""))


def load(port: int, paths: list[str], token: str, clients: int, seconds: float) -> dict:
    """``clients`` threads, each on its own keep-alive connection, cycling through ``paths``."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, k = [], offset
        while time.perf_counter() < stop_at:
            path = paths[k % len(paths)]
            k += 1
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if ok:
                mine.append(time.perf_counter() - started)
            else:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i * 7,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {"req_s": len(latencies) / elapsed, "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99),
            "mean": statistics.fmean(latencies) * 1000 if latencies else float("nan"), "n": len(latencies),
            "errors": errors[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""))
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--cases", default="sessions,thumbnails,thumbnails-unaudited")
    parser.add_argument("--app-role", default="", help="serve as this PostgreSQL role (row-level security)")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        sys.exit("--database-url postgres://... (a scratch database: it is dropped and created)")
    repo = args.repo.resolve()
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    env = {
        **os.environ, "DATABASE_URL": args.database_url, "VAR_DIR": str(work / "var"),
        "CELERY_BROKER_URL": "memory://", "CELERY_RESULT_BACKEND": "cache+memory://",
        "INFERENCE_AUTO_ON_UPLOAD": "0", "API_USER_RATE": "100000000/hour", "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "60", "PYTHONPATH": str(repo), "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    env.pop("DATABASE_SCOPE_ROLE", None)
    try:
        recreate_database(args.database_url)
        run([sys.executable, "manage.py", "migrate", "-v0"], env, repo)
        out = run([sys.executable, "manage.py", "shell", "-c", "import json\n" + SEED], env, repo)
        seed = json.loads(next(line for line in out.splitlines() if line.startswith("SEED "))[5:])
        serve_env = dict(env)
        if args.app_role:
            run([sys.executable, "manage.py", "db_app_role", args.app_role, "--create"], env, repo)
            import psycopg

            parsed = urlparse(args.database_url)
            with psycopg.connect(f"host={parsed.hostname} port={parsed.port or 5432} user={parsed.username} "
                                 f"dbname={parsed.path.lstrip('/')}", autocommit=True) as conn:
                conn.execute(f'ALTER ROLE "{args.app_role}" LOGIN')
            serve_env["DATABASE_URL"] = parsed._replace(netloc=f"{args.app_role}@{parsed.hostname}:{parsed.port or 5432}").geturl()
        cases = {
            "sessions": (["/api/v1/sessions/"], False),
            "thumbnails": ([f"/api/v1/images/{i}/thumbnail/" for i in seed["images"]], False),
            "thumbnails-unaudited": ([f"/api/v1/images/{i}/thumbnail/" for i in seed["images"]], True),
        }
        print(f"repo={repo} clients={args.clients} seconds={args.seconds} workers={args.workers} "
              f"role={args.app_role or 'owner'}")
        print(f"{'case':24} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'n':>6} {'errors':>6}")
        for name in args.cases.split(","):
            paths, unaudited = cases[name]
            proc, port = start_server(repo, serve_env, args.workers, unaudited)
            try:
                load(port, paths, seed["token"], args.clients, 2.0)  # warm-up
                r = load(port, paths, seed["token"], args.clients, args.seconds)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            print(f"{name:24} {r['req_s']:8.1f} {r['p50']:8.1f} {r['p95']:8.1f} {r['p99']:8.1f} {r['n']:6d} "
                  f"{r['errors']:6d}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
