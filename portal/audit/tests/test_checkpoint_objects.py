"""Checkpoint objects: each host publishes its checkpoint file to the media storage as
``audit/checkpoints/<AUDIT_CHECKPOINT_NAME>.json``, throttled; ``verify_audit`` on any host compares the chain
with every host's object, so deleting the events only another host checkpointed is detected. Run against
local disk storage and against a real S3 server (SeaweedFS)."""
from __future__ import annotations

import json
import logging

import pytest
from django.core.files.storage import default_storage

from portal.audit import services
from portal.audit.models import AuditChainHead, AuditEvent
from portal.audit.services import (
    audit_record,
    checkpoint_key,
    checkpoint_object_name,
    checkpoint_publish,
    checkpoint_read,
    event_summary,
    head_signature,
)
from portal.audit.verification import audit_verify
from portal.testing.db import sql_behind_the_app


@pytest.fixture(params=["local", "s3"])
def media(request, settings, tmp_path):
    """The media storage: local disk (the audit conftest's MEDIA_ROOT) or a bucket of SeaweedFS."""
    if request.param == "s3":
        request.getfixturevalue("s3_storage")
    return request.param


@pytest.fixture
def writes(monkeypatch):
    """Counts the writes of checkpoint objects (by name)."""
    written: list[str] = []
    real = services._object_write

    def counting(storage, name, chains):
        real(storage, name, chains)
        written.append(name)

    monkeypatch.setattr(services, "_object_write", counting)
    return written


def record(cast, i: int) -> AuditEvent:
    return audit_record(actor=cast.a.uploader, action=f"test.event{i}", center=cast.a.center, object_type="test",
                        object_id=str(i))


def published(name: str | None = None) -> dict:
    """This database's entries of a checkpoint object, by chain id."""
    with default_storage.open(checkpoint_object_name(name), "rb") as handle:
        chains = json.loads(handle.read())["chains"]
    prefix = checkpoint_key("")
    return {key[len(prefix):]: entry for key, entry in chains.items() if key.startswith(prefix)}


def as_host(settings, tmp_path, name: str) -> None:
    """Act as host ``name``: its own checkpoint file and object name (the database and storage shared)."""
    settings.AUDIT_CHECKPOINT_NAME = name
    settings.AUDIT_CHECKPOINT_PATH = tmp_path / name / "audit_checkpoint.json"


def test_publishing_is_throttled_and_a_forced_publish_writes(media, cast, settings, writes,
                                                             django_capture_on_commit_callbacks):
    settings.AUDIT_CHECKPOINT_PUBLISH_SECONDS = 60
    with django_capture_on_commit_callbacks(execute=True):
        record(cast, 1)
    with django_capture_on_commit_callbacks(execute=True):
        event2 = record(cast, 2)
    assert writes == ["audit/checkpoints/test-host.json"]  # two writes within the interval: one object write
    [entry] = published().values()
    assert entry["sequence"] == 1
    assert max(e["sequence"] for e in checkpoint_read().values()) == 2  # the local file is not throttled

    assert checkpoint_publish(force=True) is True
    assert len(writes) == 2
    [entry] = published().values()
    assert (entry["sequence"], entry["hash"]) == (2, event2.hash)
    assert checkpoint_publish(force=True) is False  # nothing new: not written again
    assert len(writes) == 2


def test_publishing_again_after_the_interval_writes(media, cast, settings, writes,
                                                    django_capture_on_commit_callbacks):
    settings.AUDIT_CHECKPOINT_PUBLISH_SECONDS = 0
    for i in (1, 2):
        with django_capture_on_commit_callbacks(execute=True):
            record(cast, i)
    assert len(writes) == 2
    [entry] = published().values()
    assert entry["sequence"] == 2


def test_the_beat_task_publishes(media, cast, settings, django_capture_on_commit_callbacks):
    from workers.tasks import audit_fold_pending

    with django_capture_on_commit_callbacks(execute=True):
        record(cast, 1)
        record(cast, 2)
    assert [e["sequence"] for e in published().values()] == [1]
    audit_fold_pending.apply().get()
    assert [e["sequence"] for e in published().values()] == [2]


def test_an_object_only_moves_forward(media, cast, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        record(cast, 1)
        record(cast, 2)
    checkpoint_publish(force=True)
    settings.AUDIT_CHECKPOINT_PATH = settings.AUDIT_CHECKPOINT_PATH.with_name("older.json")
    # This host's file lost (a fresh disk): the object keeps #2, it is not moved back to #1.
    chain_id = AuditChainHead.objects.get().chain_id
    first = AuditEvent.objects.get(sequence=1)
    services.checkpoint_write({"chain_id": chain_id, "sequence": 1, "hash": first.hash,
                               "summary": event_summary(first),
                               "signature": head_signature(chain_id=chain_id, sequence=1, hash=first.hash,
                                                           summary=event_summary(first))})
    checkpoint_publish(force=True)
    assert [e["sequence"] for e in published().values()] == [2]




def rewind_head_to(sequence: int) -> None:
    """Re-sign the head row at ``sequence`` (as an attacker holding the key could)."""
    event = AuditEvent.objects.get(sequence=sequence)
    head = AuditChainHead.objects.get()
    summary = event_summary(event)
    AuditChainHead.objects.filter(pk=1).update(
        sequence=sequence, hash=event.hash, summary=summary,
        signature=head_signature(chain_id=head.chain_id, sequence=sequence, hash=event.hash, summary=summary))


def test_verify_on_one_host_detects_deleted_events_only_another_hosts_checkpoint_covers(
        media, cast, settings, tmp_path, django_capture_on_commit_callbacks, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    as_host(settings, tmp_path, "host-a")
    with django_capture_on_commit_callbacks(execute=True):
        for i in (1, 2, 3):
            record(cast, i)
    checkpoint_publish(force=True)
    as_host(settings, tmp_path, "host-b")
    with django_capture_on_commit_callbacks(execute=True):
        for i in (4, 5):
            record(cast, i)
    checkpoint_publish(force=True)  # as host B's beat task does

    as_host(settings, tmp_path, "host-a")
    assert audit_verify().ok
    sql_behind_the_app("DELETE FROM audit_auditevent WHERE sequence IN (4, 5)")
    rewind_head_to(3)
    # Host A's own file and object end at #3: only host B's object knows the chain went to #5.
    assert [e["sequence"] for e in services.checkpoint_entries().values()] == [3]
    result = audit_verify()
    assert result.problems == [
        "the checkpoint object audit/checkpoints/host-b.json records #5 test.event5 test:5 but the chain ends at "
        f"{_name(AuditEvent.objects.get(sequence=3))}: the last event(s) were deleted"]
    assert result.checkpoints == [f"file {tmp_path / 'host-a' / 'audit_checkpoint.json'}",
                                  "object audit/checkpoints/host-a.json", "object audit/checkpoints/host-b.json"]
    with pytest.raises(CommandError):
        call_command("verify_audit")
    out = capsys.readouterr()
    assert "object audit/checkpoints/host-b.json" in out.out and "host-b.json records #5" in out.err


def test_a_trail_wiped_after_another_host_wrote_is_detected_by_its_object(
        media, cast, settings, tmp_path, django_capture_on_commit_callbacks):
    as_host(settings, tmp_path, "host-b")
    with django_capture_on_commit_callbacks(execute=True):
        record(cast, 1)
    as_host(settings, tmp_path, "host-a")  # never wrote: no local file at all
    sql_behind_the_app("DELETE FROM audit_auditevent")
    sql_behind_the_app("DELETE FROM audit_auditchainhead")
    result = audit_verify()
    assert len(result.problems) == 1
    assert "the checkpoint object audit/checkpoints/host-b.json records #1 test.event1" in result.problems[0]
    assert "wiped" in result.problems[0]


def _name(event: AuditEvent) -> str:
    from portal.audit.verification import _name as name

    return name(event)


def test_a_broken_object_store_does_not_fail_audit_record(cast, settings, tmp_path, caplog,
                                                          django_capture_on_commit_callbacks):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = {**settings.MEDIA_STORAGE_S3, "bucket_name": "gone", "endpoint_url": f"http://127.0.0.1:{port}",
               "access_key": "x", "secret_key": "y", "region_name": "us-east-1"}
    settings.STORAGES = {**settings.STORAGES,
                         "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}}
    with caplog.at_level(logging.WARNING, logger="portal.audit.services"):
        with django_capture_on_commit_callbacks(execute=True):
            event = record(cast, 1)
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert [e["sequence"] for e in checkpoint_read().values()] == [1]  # the local file still moved
    assert any("audit checkpoint not published" in r.getMessage() for r in caplog.records)
    result = audit_verify()  # the chain is fine; the objects could not be compared, and it says so
    assert result.ok and result.checkpoints_unreadable


def test_a_publish_skipped_by_the_interval_follows_at_its_end(media, cast, settings, writes,
                                                              django_capture_on_commit_callbacks):
    import time

    # Counted from the end of a publish, so a slow object store (CI under load) cannot let the second
    # record publish at once.
    settings.AUDIT_CHECKPOINT_PUBLISH_SECONDS = 2
    with django_capture_on_commit_callbacks(execute=True):
        record(cast, 1)
    with django_capture_on_commit_callbacks(execute=True):
        event2 = record(cast, 2)
    assert len(writes) == 1  # the second one throttled...
    deadline = time.monotonic() + 20
    while len(writes) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(writes) == 2  # ...and published by the trailing publish, though nothing was written since
    [entry] = published().values()
    assert (entry["sequence"], entry["hash"]) == (2, event2.hash)
