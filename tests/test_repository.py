"""The repository names no machine path: everything it needs is found relative to its root."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from portal.testing.shared import REPO

MACHINE_PATH = re.compile(r"(?<![\w.$~-])/(?:work|tmp|root)(?:/|\b)")


def test_no_committed_file_names_a_machine_path():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("external program missing: git (or this is not a git checkout)")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    found = []
    for name in filter(None, files.decode().split("\0")):
        path = REPO / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:4096]:  # binary (weights, images)
            continue
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{name}:{number}: {line.strip()[:120]}")
    assert not found, "machine paths in committed files:\n" + "\n".join(found)
