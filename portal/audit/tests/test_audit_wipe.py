"""Wiping the whole audit trail (TRUNCATE, or every row plus the head row) never verifies as OK.

The checkpoint file outside the database remembers how far each chain of this database went; an
empty database with a checkpoint entry is a wiped trail, not a fresh one.
"""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from portal.audit.models import AuditChainHead, AuditEvent
from portal.audit.services import audit_record
from portal.audit.verification import audit_verify
from portal.testing.db import postgres_only


@pytest.fixture
def chain(cast, django_capture_on_commit_callbacks):
    """Five committed events (the checkpoint file records #5)."""
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(1, 6):
            audit_record(actor=cast.a.uploader, action=f"test.event{i}", center=cast.a.center,
                         object_type="test", object_id=str(i))


def as_superuser(*statements: str) -> None:
    """Run SQL as a database superuser could: with triggers switched off on PostgreSQL."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as in a transaction of its own
            cursor.execute("SET session_replication_role = replica")
        for sql in statements:
            cursor.execute(sql)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = origin")


def assert_wipe_detected():
    result = audit_verify()
    assert not result.ok
    assert any("the checkpoint file records #5 test.event5" in p and "wiped" in p for p in result.problems), \
        result.problems
    with pytest.raises(CommandError, match="verification failed"):
        call_command("verify_audit")


def test_deleting_every_event_and_the_head_row_is_detected(chain):
    as_superuser("DELETE FROM audit_auditevent", "DELETE FROM audit_auditchainhead")
    assert not AuditEvent.objects.exists() and not AuditChainHead.objects.exists()
    assert_wipe_detected()


@postgres_only
def test_truncate_and_deleting_the_head_row_is_detected_on_postgres(chain):
    as_superuser("TRUNCATE audit_auditevent", "DELETE FROM audit_auditchainhead")
    assert_wipe_detected()


def test_replacing_the_trail_with_a_new_chain_is_detected(chain, cast, django_capture_on_commit_callbacks):
    as_superuser("DELETE FROM audit_auditevent", "DELETE FROM audit_auditchainhead")
    with django_capture_on_commit_callbacks(execute=True):
        audit_record(actor=cast.a.uploader, action="test.fresh", object_type="test", object_id="1")
    assert_wipe_detected()


def test_a_fresh_database_without_a_checkpoint_verifies(db, capsys):
    assert audit_verify().ok
    call_command("verify_audit")
    assert "audit chain OK: 0 events" in capsys.readouterr().out


def test_verification_cannot_skip_the_checkpoint():
    from portal.audit.management.commands.verify_audit import Command

    parser = Command().create_parser("manage.py", "verify_audit")
    assert "--no-checkpoint" not in parser.format_help()


@postgres_only
def test_postgres_refuses_truncate_of_the_audit_trail(chain):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as in a transaction of its own
            cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 5
    assert audit_verify().ok
