"""Schemathesis against the live test server: every operation of the OpenAPI schema, all checks.

A bounded, reproducible run (fixed seed, ``FUZZ_MAX_EXAMPLES`` cases per operation and phase, one
worker) authenticated with the API token of a center administrator whose center has data (patients,
sessions with images, a job with a result set, a reviewable image, a draft validation study); a second
center has the same, so answers that leak across centers would show up as schema or status mismatches.
The schema given to schemathesis declares token authentication only: the session cookie is for the
browser pages, and a request without a token but with a cookie is not what a script sends.

Figures are printed (operations, cases, failures, seconds); ``-s`` shows them. ``FUZZ_MAX_EXAMPLES``
and ``FUZZ_SEED`` deepen or vary the run; ``FUZZ_LOG=path`` keeps schemathesis's full output.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SEED = int(os.environ.get("FUZZ_SEED", "20261202"))
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "8"))
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")  # the few operations whose rules OpenAPI cannot state


def _world() -> tuple[object, dict[str, list[str]]]:
    """Two centers with data; returns the cast and, per kind of object, the ids of both centers'."""
    from portal.results.models import Detection
    from portal.testing import validation as vt
    from portal.testing.cast import build_cast
    from portal.testing.imaging import make_imaging
    from portal.testing.jobs import build_job_world
    from portal.testing.review import make_reviewable_image

    cast = build_cast()
    ids: dict[str, list[str]] = {}

    def add(kind, *values):
        ids.setdefault(kind, []).extend(str(v) for v in values)

    for cc in (cast.a, cast.b):
        imaging = make_imaging(cc)
        add("patients", imaging["patient"].pk)
        add("sessions", imaging["session"].pk)
        add("images", imaging["image"].pk)
        jobs = build_job_world(cast, cc)
        add("session_id", jobs["session"].pk, jobs["fresh_session"].pk)
        add("image_id", jobs["image"].pk)
        add("job_id", jobs["job"].pk)
        add("result_set_id", jobs["result_set"].pk)
        add("model_version_id", jobs["model"].pk, jobs["spare_model"].pk)
        reviewable = make_reviewable_image(cc, n=3)
        add("image_id", reviewable.pk)
        add("session_id", reviewable.session_id)
        add("detection_id", *Detection.objects.filter(result_set__image=reviewable).values_list("pk", flat=True))
        study = vt.make_draft_study(cast, cc)
        add("study_id", study.pk)
        add("username", cc.validator.username, cc.validator2.username)
    return cast, ids


def fuzz_config(ids: dict[str, list[str]]) -> str:
    """``schemathesis.toml`` plus dictionaries of real ids (both centers'), each used for about half of
    the generated values of the path parameters of that name, so cases reach existing objects."""
    lines = [CONFIG.read_text(), ""]
    for kind, values in ids.items():
        lines += [f"[dictionaries.{kind}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    lines += [f'"path.{kind}" = {{ dictionary = "{kind}", probability = 0.5 }}'
              for kind in ids if kind not in ("patients", "sessions", "images")]
    for kind in ("patients", "sessions", "images"):
        lines += ["", "[[operations]]", f'include-path-regex = "^/api/v1/{kind}/\\\\{{id\\\\}}/"',
                  f'parameters = {{ "path.id" = {{ dictionary = "{kind}", probability = 0.5 }} }}']
    return "\n".join(lines) + "\n"


def token_only_schema() -> dict:
    """The API's OpenAPI schema with token authentication as the only security scheme."""
    from drf_spectacular.generators import SchemaGenerator

    schema = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))
    schema["components"]["securitySchemes"] = {
        "tokenAuth": schema["components"]["securitySchemes"]["tokenAuth"]}
    for operations in schema["paths"].values():
        for operation in operations.values():
            if operation.get("security"):
                operation["security"] = [{"tokenAuth": []}]
    return schema


@pytest.mark.slow
def test_the_api_answers_as_its_schema_says_under_fuzzing(live_server, transactional_db, settings, tmp_path):
    from portal.accounts.services import api_token_issue

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    settings.INFERENCE_AUTO_ON_UPLOAD = False
    cast, ids = _world()
    token = api_token_issue(user=cast.a.admin)
    schema_path = tmp_path / "openapi.json"
    schema_path.write_text(json.dumps(token_only_schema()))
    report = tmp_path / "report.json"
    config = tmp_path / "schemathesis.toml"
    config.write_text(fuzz_config(ids))
    command = [
        str(SCHEMATHESIS), "--config-file", str(config), "--no-color", "run", str(schema_path),
        "--url", live_server.url,
        "--header", f"Authorization: Token {token}", "--checks", "all", "--seed", str(SEED),
        "--max-examples", str(MAX_EXAMPLES), "--workers", "1",
        "--report", "json", "--report-json-path", str(report), "--report-dir", str(tmp_path),
    ]
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=tmp_path)
    seconds = time.monotonic() - started
    if os.environ.get("FUZZ_LOG"):  # the full schemathesis output, for working on failures
        Path(os.environ["FUZZ_LOG"]).write_text(run.stdout + run.stderr)
    figures = summarize(json.loads(report.read_text()) if report.exists() else {})
    print(f"schemathesis: {figures}, {seconds:.0f} s, seed {SEED}, max examples {MAX_EXAMPLES}")
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]


def summarize(report: dict) -> dict:
    """Operations, cases and failures from schemathesis's JSON report (keys vary by version: kept loose)."""
    out = {}
    for key in ("operations", "cases", "test_cases", "failures", "errors", "statistic", "summary"):
        if key in report:
            out[key] = report[key]
    return out or {"report_keys": sorted(report)}
