"""Model bundles in the workers' media cache (``portal.core.media.bundle_cached_dir``): staging folders
left by a crashed fill are removed once stale and unheld, and the cache keeps at most
``MEDIA_CACHE_MAX_BUNDLES`` bundles (least recently used, idle ones go first)."""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from portal.core import media
from portal.core.media import bundle_cached_dir


def _stored_bundle(prefix: str) -> None:
    for name, data in (("config.yaml", b"model: tiny\n"), ("weights/model.bin", os.urandom(2000))):
        default_storage.save(f"{prefix}/{name}", ContentFile(data))


def _fill(n: int) -> Path:
    _stored_bundle(f"models/m{n}")
    return bundle_cached_dir(prefix=f"models/m{n}", weights_sha256=f"{n:064x}", verify=lambda _d: None)


def _age(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


def test_it_removes_stale_staging_folders_that_no_fill_holds(storage):
    first = _fill(1)
    root = first.parent
    crashed = root / f".staging-{'2' * 64}-{'0' * 16}-{'a' * 32}"  # a fill of another bundle died
    legacy = root / f".staging-{'b' * 32}"  # left by the code before staging names held their bundle
    running = root / f".staging-{'3' * 64}-{'0' * 16}-{'c' * 32}"  # old, but its fill still runs
    fresh = root / f".staging-{'4' * 64}-{'0' * 16}-{'d' * 32}"
    for folder in (crashed, legacy, running, fresh):
        (folder / "weights").mkdir(parents=True)
        (folder / "weights" / "model.bin").write_bytes(b"x" * 100)
    for folder in (crashed, legacy, running):
        _age(folder, media.BUNDLE_STAGING_STALE_SECONDS + 60)
    with open(root / f"{'3' * 64}-{'0' * 16}.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert _fill(1) == first  # a cache hit cleans too
    assert not crashed.exists() and not legacy.exists()
    assert running.is_dir() and fresh.is_dir()
    assert (first / ".complete").is_file()


def test_it_keeps_at_most_the_configured_number_of_bundles(storage, settings):
    settings.MEDIA_CACHE_MAX_BUNDLES = 2
    one, two = _fill(1), _fill(2)
    _age(one / ".complete", media.BUNDLE_IDLE_SECONDS + 120)  # least recently used
    _age(two / ".complete", media.BUNDLE_IDLE_SECONDS + 60)
    three = _fill(3)
    assert not one.exists() and two.is_dir() and three.is_dir()
    assert not [p for p in three.parent.iterdir() if p.name.startswith(".staging-")]
    # bundles used within the idle time are kept even past the limit (a worker may be loading them)
    assert _fill(2) == two
    four = _fill(4)
    assert {two.is_dir(), three.is_dir(), four.is_dir()} == {True}
    _age(two / ".complete", media.BUNDLE_IDLE_SECONDS + 60)
    _age(three / ".complete", media.BUNDLE_IDLE_SECONDS + 30)
    assert _fill(4) == four
    assert not two.exists() and three.is_dir() and four.is_dir()


def test_a_bundle_whose_lock_is_held_is_not_evicted(storage, settings):
    settings.MEDIA_CACHE_MAX_BUNDLES = 1
    one = _fill(1)
    _age(one / ".complete", media.BUNDLE_IDLE_SECONDS + 60)
    with open(one.parent / f"{one.name}.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_SH)
        two = _fill(2)
    assert one.is_dir() and two.is_dir()
    _fill(2)
    assert not one.exists()


def test_a_fill_that_fails_leaves_no_staging_folder(storage):
    n = 1
    _stored_bundle(f"models/m{n}")

    def refuse(_directory: Path) -> None:
        raise ValueError("corrupt")

    with pytest.raises(ValueError):
        bundle_cached_dir(prefix=f"models/m{n}", weights_sha256=f"{n:064x}", verify=refuse)
    root = Path(storage) / "media-cache" / "bundles"
    assert not [p for p in root.iterdir() if p.name.startswith(".staging-")]
