"""The checkpoint file is written by group commit: one write covers every event committed so far, so
concurrent audited reads share one fsync, and the file still never moves back."""
from __future__ import annotations

import pytest

from portal.audit.services import audit_record, checkpoint_entries, checkpoint_write


@pytest.mark.django_db(transaction=True)
def test_a_late_checkpoint_write_covers_events_committed_since(settings, tmp_path, monkeypatch):
    from portal.audit import services
    from portal.audit.verification import audit_verify

    settings.AUDIT_CHECKPOINT_PATH = tmp_path / "checkpoint.json"
    delayed: list[dict] = []
    monkeypatch.setattr(services, "checkpoint_write", delayed.append)  # hold the writes back
    first = audit_record(actor=None, action="test.one")
    audit_record(actor=None, action="test.two")
    third = audit_record(actor=None, action="test.three")
    monkeypatch.undo()
    assert [h["sequence"] for h in delayed] == [first.sequence, first.sequence + 1, third.sequence]

    checkpoint_write(delayed[0])  # the first writer to get the lock writes the newest committed head
    (entry,) = checkpoint_entries().values()
    assert entry["sequence"] == third.sequence and entry["hash"] == third.hash
    for head in delayed[1:]:  # the others find it done
        checkpoint_write(head)
    assert next(iter(checkpoint_entries().values()))["sequence"] == third.sequence
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)
def test_the_checkpoint_never_moves_back(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_PATH = tmp_path / "checkpoint.json"
    first = audit_record(actor=None, action="test.one")
    second = audit_record(actor=None, action="test.two")
    (entry,) = checkpoint_entries().values()
    assert entry["sequence"] == second.sequence
    checkpoint_write({"chain_id": entry["chain_id"], "sequence": first.sequence, "hash": first.hash,
                      "summary": "", "signature": ""})
    assert next(iter(checkpoint_entries().values()))["sequence"] == second.sequence
