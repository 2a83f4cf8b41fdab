"""No portal code reaches media by a filesystem path: only the storage API (portal.core.media)."""
from __future__ import annotations

import re

from tests.helpers import REPO

# Where MEDIA_ROOT may be named: its definition, and the local storage that media_move copies from/to.
MEDIA_ROOT_ALLOWED = {"portal/settings.py", "portal/core/media.py", "portal/core/management/commands/media_move.py"}
FIELD_PATH = re.compile(r"(?<!request)(?<!sys)(?<!os)\.path\b(?!\.)")
MEDIA_ROOT = re.compile(r"\bMEDIA_ROOT\b")


def _portal_sources():
    for path in sorted((REPO / "portal").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        if "/tests/" in relative or "/migrations/" in relative or relative.startswith("portal/testing/"):
            continue
        yield relative, path.read_text(encoding="utf-8")


def test_no_portal_module_reads_media_root_or_a_files_path():
    offenders = []
    for relative, text in _portal_sources():
        for number, line in enumerate(text.splitlines(), 1):
            code = line.split("#", 1)[0]
            if MEDIA_ROOT.search(code) and relative not in MEDIA_ROOT_ALLOWED:
                offenders.append(f"{relative}:{number}: {line.strip()}")
            if FIELD_PATH.search(code):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == [], "media must go through the storage API:\n" + "\n".join(offenders)


def test_the_guard_sees_what_it_forbids():
    assert FIELD_PATH.search("with open(image.file.path) as f:")
    assert not FIELD_PATH.search("if request.path.startswith('/api/'):")
    assert MEDIA_ROOT.search("Path(settings.MEDIA_ROOT) / name")
