"""CPU time and database round trips per API request, in process (no server, no clients: a wall-clock
benchmark on a shared machine is noisy; CPU time of the serving process is not), for this checkout and a
peer checkout side by side.

    .venv/bin/python benchmarks/bench_request_overhead.py --database-url postgres://postgres@127.0.0.1:5432/scratch \
        [--repo PATH] [--requests 500] [--rounds 3] [--app-role NAME] [--profile DIR] [--show-sql]

For each checkout (this one, then ``--repo`` if given) the script creates the database named in
``--database-url`` afresh (with ``_a``/``_b`` appended: use a scratch name), migrates it, seeds it as
``bench_api.py`` does (one center, 60 sessions of 3 images with thumbnails, an API token) and, in a fresh
process on that checkout's code, sends ``--requests`` token-authenticated GETs of each case straight to the
WSGI application (``portal.wsgi.application``, as gunicorn calls it; persistent connection). It prints,
per case: CPU ms per request (``time.process_time``, after 50 warm-up requests: the mean of the least
disturbed fifth of the requests, best of ``--rounds`` processes run alternately for the two checkouts),
SQL statements Django ran per request and database round trips per request (every ``execute`` on a
psycopg cursor, the row-level-security settings included). ``--app-role`` serves as that PostgreSQL role
(row-level security applies, as in production); ``--profile DIR`` writes a cProfile file per case.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import SEED, recreate_database, run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Runs inside the measured checkout (its code on PYTHONPATH); prints one JSON line.
MEASURE = r"""
import cProfile, io, json, os, sys, time
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
from portal.wsgi import application
import psycopg
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext

args = json.loads(sys.argv[1])
round_trips = [0]
for cls in (psycopg.Cursor, psycopg.ClientCursor):
    original = cls.__dict__.get("execute")
    if original is None:
        continue
    def counted(self, *a, _original=original, **k):
        round_trips[0] += 1
        return _original(self, *a, **k)
    cls.execute = counted

def environ(path):
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000", "HTTP_AUTHORIZATION": "Token " + args["token"],
            "HTTP_ACCEPT": "application/json", "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.multithread": False,
            "wsgi.multiprocess": True, "wsgi.run_once": False}

def get(path):
    status = []
    body = application(environ(path), lambda s, h, exc_info=None: status.append(s))
    try:
        for _ in body:
            pass
    finally:
        body.close()
    if not status[0].startswith("200"):
        raise SystemExit(f"{path}: {status[0]}")

out = {}
for name, paths in args["cases"].items():
    for k in range(50):
        get(paths[k % len(paths)])
    with CaptureQueriesContext(connection) as queries:
        trips_before = round_trips[0]
        for k in range(20):
            get(paths[k % len(paths)])
    statements = len(queries) / 20
    trips = (round_trips[0] - trips_before) / 20
    sample = [q["sql"][:160] for q in queries.captured_queries[: len(queries) // 20]]
    profiler = cProfile.Profile() if args["profile"] else None
    n = args["requests"]
    block = max(1, n // 5)
    means = []  # CPU ms per request of each block of n/5 requests: the least disturbed block is reported
    if profiler:
        profiler.enable()
    for start in range(0, n, block):
        started = time.process_time()
        for k in range(start, min(n, start + block)):
            get(paths[k % len(paths)])
        means.append((time.process_time() - started) * 1000 / (min(n, start + block) - start))
    if profiler:
        profiler.disable()
        profiler.dump_stats(os.path.join(args["profile"], f"{args['label']}-{name}.prof"))
    cpu_ms = min(means)
    out[name] = {"cpu_ms": cpu_ms, "statements": statements, "round_trips": trips, "sql": sample}
print("RESULT " + json.dumps(out))
"""


def prepare(repo: Path, database_url: str, label: str, args: argparse.Namespace) -> dict:
    """Create and seed the database of one checkout; what ``measure_round`` runs."""
    work = Path(tempfile.mkdtemp(prefix=f"bench-overhead-{label}-"))
    env = {
        **os.environ, "DATABASE_URL": database_url, "VAR_DIR": str(work / "var"),
        "CELERY_BROKER_URL": "memory://", "CELERY_RESULT_BACKEND": "cache+memory://",
        "INFERENCE_AUTO_ON_UPLOAD": "0", "API_USER_RATE": "100000000/hour", "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "60", "PYTHONPATH": str(repo), "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    env.pop("DATABASE_SCOPE_ROLE", None)
    recreate_database(database_url)
    run([sys.executable, "manage.py", "migrate", "-v0"], env, repo)
    out = run([sys.executable, "manage.py", "shell", "-c", "import json\n" + SEED], env, repo)
    seed = json.loads(next(line for line in out.splitlines() if line.startswith("SEED "))[5:])
    serve_env = dict(env)
    if args.app_role:
        import psycopg

        run([sys.executable, "manage.py", "db_app_role", args.app_role, "--create"], env, repo)
        parsed = urlparse(database_url)
        with psycopg.connect(f"host={parsed.hostname} port={parsed.port or 5432} user={parsed.username} "
                             f"dbname={parsed.path.lstrip('/')}", autocommit=True) as conn:
            conn.execute(f'ALTER ROLE "{args.app_role}" LOGIN')
        serve_env["DATABASE_URL"] = parsed._replace(
            netloc=f"{args.app_role}@{parsed.hostname}:{parsed.port or 5432}").geturl()
    cases = {
        "sessions": ["/api/v1/sessions/"],
        "thumbnail": [f"/api/v1/images/{i}/thumbnail/" for i in seed["images"]],
    }
    spec = {"token": seed["token"], "cases": cases, "requests": args.requests, "label": label,
            "profile": str(args.profile.resolve()) if args.profile else ""}
    return {"cmd": [sys.executable, "-c", MEASURE, json.dumps(spec)], "env": serve_env, "repo": repo}


def measure_round(prepared: dict) -> dict:
    """One measuring process on a prepared checkout: the per-case figures."""
    out = run(prepared["cmd"], prepared["env"], prepared["repo"])
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""))
    parser.add_argument("--repo", type=Path, default=None, help="a peer checkout, measured in the same run")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="measuring processes per checkout, alternating")
    parser.add_argument("--app-role", default="", help="serve as this PostgreSQL role (row-level security)")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile files here")
    parser.add_argument("--show-sql", action="store_true", help="print the statements of one request")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        sys.exit("--database-url postgres://... (a scratch name: <name>_a and <name>_b are dropped and created)")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    parsed = urlparse(args.database_url)
    checkouts = [("this", ROOT)] + ([("peer", args.repo.resolve())] if args.repo else [])
    prepared = {label: prepare(repo, parsed._replace(path=f"{parsed.path}_{'a' if label == 'this' else 'b'}").geturl(),
                               label, args)
                for label, repo in checkouts}
    results: dict = {}
    for _ in range(args.rounds):  # alternating, so that both see the same moments of a shared machine
        for label, _repo in checkouts:
            r = measure_round(prepared[label])
            best = results.setdefault(label, r)
            for case, figures in r.items():
                best[case]["cpu_ms"] = min(best[case]["cpu_ms"], figures["cpu_ms"])
    print(f"requests={args.requests} rounds={args.rounds} role={args.app_role or 'owner'} "
          f"(CPU ms: the least disturbed fifth of the requests, best round)")
    for label, repo in checkouts:
        print(f"  {label}: {repo}")
    print(f"{'case':12} {'checkout':8} {'CPU ms/req':>10} {'SQL/req':>8} {'trips/req':>9}")
    for case in results["this"]:
        for label, _ in checkouts:
            r = results[label][case]
            print(f"{case:12} {label:8} {r['cpu_ms']:10.2f} {r['statements']:8.1f} {r['round_trips']:9.1f}")
    if args.show_sql:
        for label, _ in checkouts:
            for case, r in results[label].items():
                print(f"--- {label} {case}")
                print("\n".join(r["sql"]))


if __name__ == "__main__":
    main()
