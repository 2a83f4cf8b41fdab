"""The training checkpoint mirror (``CheckpointMirror``): a crash while a file is being replaced in
storage never loses the previous copy, ``last_checkpoint`` included; a copy cut short is skipped on
restore; each mirrored file keeps one stored version."""
from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from django.core.files.storage import default_storage

from portal.training.services import CheckpointMirror

JOB = "00000000-0000-0000-0000-0000000000c1"


@pytest.fixture(params=["local", "s3"])
def media(request):
    """Media on local disk, then in the SeaweedFS bucket."""
    return request.getfixturevalue("storage" if request.param == "local" else "s3_storage")


class Crash(Exception):
    """The worker dies here."""


def _write(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


def _stored(prefix: str) -> list[str]:
    try:
        return sorted(default_storage.listdir(prefix)[1])
    except FileNotFoundError:
        return []


def test_a_crash_while_the_pointer_is_replaced_keeps_the_previous_pointer(media, tmp_path):
    first = tmp_path / "host1"
    _write(first, {"model_0000001.pth": b"w1" * 1000, "last_checkpoint": b"model_0000001.pth"})
    mirror = CheckpointMirror(JOB, first)
    mirror.sync()
    _write(first, {"model_0000003.pth": b"w3" * 1000, "last_checkpoint": b"model_0000003.pth"})
    saved = []
    real_save = default_storage.save

    def save_then_crash_on_the_pointer(name, content, *args, **kwargs):
        if "last_checkpoint" in name:
            raise Crash(name)
        saved.append(name)
        return real_save(name, content, *args, **kwargs)

    with mock.patch.object(default_storage, "save", side_effect=save_then_crash_on_the_pointer), \
            pytest.raises(Crash):
        mirror.sync()
    assert saved, "the new checkpoint went in before the pointer"

    other_host = tmp_path / "host2"
    assert CheckpointMirror(JOB, other_host).restore() == 3
    assert (other_host / "last_checkpoint").read_bytes() == b"model_0000001.pth"
    assert (other_host / "model_0000001.pth").read_bytes() == b"w1" * 1000
    assert (other_host / "model_0000003.pth").read_bytes() == b"w3" * 1000


def test_each_file_keeps_one_stored_version_and_rotated_files_go(media, tmp_path):
    folder = tmp_path / "host1"
    prefix = CheckpointMirror(JOB, folder).prefix
    mirror = CheckpointMirror(JOB, folder)
    _write(folder, {"model_0000001.pth": b"a" * 10, "last_checkpoint": b"model_0000001.pth"})
    mirror.sync()
    _write(folder, {"model_0000002.pth": b"b" * 10, "last_checkpoint": b"model_0000002.pth"})
    (folder / "model_0000001.pth").unlink()
    mirror.sync()
    stored = _stored(prefix)
    assert len(stored) == 2
    assert sorted(name.rpartition("@")[0] for name in stored) == ["last_checkpoint", "model_0000002.pth"]
    # a resumed worker on the same host (a new mirror over the same folder) replaces, never duplicates
    _write(folder, {"last_checkpoint": b"model_0000002.pth "})
    resumed = CheckpointMirror(JOB, folder)
    assert resumed.restore() == 0
    resumed.sync()
    assert len(_stored(prefix)) == 2
    restored = tmp_path / "host2"
    CheckpointMirror(JOB, restored).restore()
    assert (restored / "last_checkpoint").read_bytes() == b"model_0000002.pth "
    resumed.drop()
    assert _stored(prefix) == []


def test_a_copy_cut_short_is_skipped_for_the_previous_version(media, tmp_path):
    from django.core.files.base import ContentFile

    folder = tmp_path / "host1"
    mirror = CheckpointMirror(JOB, folder)
    _write(folder, {"last_checkpoint": b"model_0000001.pth"})
    mirror.sync()
    # a later version whose write stopped half-way: its size is not the one its name promises
    default_storage.save(f"{mirror.prefix}/last_checkpoint@{2 ** 62}-17", ContentFile(b"model_00"))
    restored = tmp_path / "host2"
    assert CheckpointMirror(JOB, restored).restore() == 1
    assert (restored / "last_checkpoint").read_bytes() == b"model_0000001.pth"
