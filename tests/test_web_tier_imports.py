"""The web tier never imports torch: a web host loads the portal's views, API and URL patterns without the
detector's libraries (they cost ~1.8 s of start-up and hundreds of MiB per server process, and only the
workers run models)."""
from __future__ import annotations

import os
import subprocess
import sys

from portal.testing.shared import REPO

PROBE = """
import sys
import django
django.setup()
from django.urls import get_resolver
import portal.wsgi  # noqa: F401  (the application gunicorn serves, its middleware included)
get_resolver().url_patterns  # every app's views and API modules
heavy = sorted(name for name in ("torch", "torchvision") if name in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


def test_loading_the_web_application_and_every_url_imports_no_torch():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HEAVY=\n" in done.stdout, f"the web tier imported {done.stdout.strip()}"
