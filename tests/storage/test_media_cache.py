"""The workers' bounded local media cache (portal.core.media): LRU eviction by size, sha256 checked,
safe when several processes on one host fetch the same files at once."""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from portal.core.media import MediaIntegrityError, cache_entry_path, media_cached_open


def _store(name: str, data: bytes) -> str:
    assert default_storage.save(name, ContentFile(data)) == name
    return hashlib.sha256(data).hexdigest()


def _read(name: str, sha: str) -> bytes:
    with media_cached_open(name=name, sha256=sha) as handle:
        return handle.read()


def test_it_evicts_the_least_recently_used_files_beyond_its_size_limit(storage, settings):
    settings.MEDIA_CACHE_MAX_BYTES = 2500
    files = {name: os.urandom(1000) for name in ("a/1.png", "a/2.png", "b/3.png")}
    shas = {name: _store(name, data) for name, data in files.items()}
    assert _read("a/1.png", shas["a/1.png"]) == files["a/1.png"]
    time.sleep(0.01)
    assert _read("a/2.png", shas["a/2.png"]) == files["a/2.png"]
    time.sleep(0.01)
    assert _read("a/1.png", shas["a/1.png"]) == files["a/1.png"]  # a hit makes 1 the most recent
    time.sleep(0.01)
    assert _read("b/3.png", shas["b/3.png"]) == files["b/3.png"]  # 3000 bytes > 2500: 2 goes
    kept = {name for name in files if cache_entry_path(name=name, sha256=shas[name]).is_file()}
    assert kept == {"a/1.png", "b/3.png"}
    total = sum(p.stat().st_size for p in (settings.MEDIA_CACHE_DIR / "files").glob("*/*"))
    assert total <= 2500


def test_a_fetched_file_that_does_not_match_its_sha256_is_refused_and_not_kept(storage, settings):
    _store("c/x.png", b"what is stored")
    wrong = hashlib.sha256(b"what the row says").hexdigest()
    with pytest.raises(MediaIntegrityError):
        _read("c/x.png", wrong)
    assert not cache_entry_path(name="c/x.png", sha256=wrong).exists()
    assert list((settings.MEDIA_CACHE_DIR / "files").rglob("*.tmp")) == []


def test_a_missing_file_is_a_file_not_found_error(storage):
    with pytest.raises(FileNotFoundError):
        _read("nowhere.png", "0" * 64)


def _hammer(names_and_shas, rounds: int, queue) -> None:
    bad = 0
    for _ in range(rounds):
        for name, sha in names_and_shas:
            if hashlib.sha256(_read(name, sha)).hexdigest() != sha:
                bad += 1
    queue.put(bad)


def test_processes_on_one_host_fetch_and_evict_concurrently_without_a_torn_file(storage, settings):
    settings.MEDIA_CACHE_MAX_BYTES = 150_000  # about three of the eight files: constant eviction
    items = [(f"d/{i}.png", _store(f"d/{i}.png", os.urandom(50_000))) for i in range(8)]
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    procs = [context.Process(target=_hammer, args=(items[k:] + items[:k], 6, queue)) for k in range(4)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert results == [0, 0, 0, 0] and all(p.exitcode == 0 for p in procs)
    assert list((settings.MEDIA_CACHE_DIR / "files").rglob("*.tmp")) == []


def test_entries_are_keyed_by_storage_name_and_content(storage, settings, tmp_path):
    sha = "a" * 64
    first = cache_entry_path(name="images/x.png", sha256=sha)
    assert first == cache_entry_path(name="images/x.png", sha256=sha)
    assert first != cache_entry_path(name="images/y.png", sha256=sha)
    assert first != cache_entry_path(name="images/x.png", sha256="b" * 64)
    settings.MEDIA_ROOT = tmp_path / "another-storage"
    assert first != cache_entry_path(name="images/x.png", sha256=sha)


def test_a_fetch_cut_short_by_a_crash_is_removed_once_stale(storage, settings):
    from portal.core import media

    sha = _store("c/1.png", os.urandom(100))
    folder = cache_entry_path(name="c/1.png", sha256=sha).parent
    folder.mkdir(parents=True, exist_ok=True)
    crashed, running = folder / ".fetch-dead.tmp", folder / ".fetch-live.tmp"
    crashed.write_bytes(b"x" * 500)
    running.write_bytes(b"y" * 500)
    old = time.time() - media.FETCH_STALE_SECONDS - 60
    os.utime(crashed, (old, old))
    assert _read("c/1.png", sha) is not None  # a fetch evicts, and cleans
    assert not crashed.exists() and running.exists()
