"""The audit chain: every write and image read is recorded; tampering is detected and named."""
from __future__ import annotations

import hashlib
import json
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.urls import reverse

from portal.audit.models import AppendOnlyError, AuditChainHead, AuditEvent
from portal.audit.services import audit_record, checkpoint_read, event_payload
from portal.audit.verification import audit_verify
from portal.testing.db import sql_behind_the_app
from portal.testing.imaging import make_image, png_upload


def append(n: int, cast) -> list[AuditEvent]:
    return [audit_record(actor=cast.a.uploader, action=f"test.event{i}", center=cast.a.center,
                         object_type="test", object_id=str(i), after={"i": i}) for i in range(1, n + 1)]


@pytest.fixture
def chain(cast, django_capture_on_commit_callbacks):
    """Five events, committed as far as the checkpoint file is concerned."""
    with django_capture_on_commit_callbacks(execute=True):
        events = append(5, cast)
    return events




def verify_fails_naming(text: str):
    result = audit_verify()
    assert not result.ok
    assert any(text in p for p in result.problems), result.problems
    with pytest.raises(CommandError):
        call_command("verify_audit")
    return result


def test_an_untouched_chain_verifies(chain, capsys):
    assert audit_verify().ok
    call_command("verify_audit")
    assert "audit chain OK: 5 events" in capsys.readouterr().out
    head = AuditChainHead.objects.get()
    assert (head.sequence, head.hash) == (5, chain[-1].hash)
    [entry] = checkpoint_read().values()
    assert entry["sequence"] == 5 and entry["hash"] == chain[-1].hash


def test_events_link_to_their_predecessor_by_hmac(chain):
    assert chain[0].prev_hash == "0" * 64
    for prev, event in zip(chain, chain[1:]):
        assert event.prev_hash == prev.hash
    assert [e.sequence for e in chain] == [1, 2, 3, 4, 5]


def test_an_edited_event_is_detected_and_named(chain):
    sql_behind_the_app("UPDATE audit_auditevent SET object_id = %s WHERE sequence = 3", ["999"])
    verify_fails_naming("event #3 (test.event3 test:999")


@pytest.mark.parametrize(("sequence", "named"), [(1, "event(s) #1 deleted"), (3, "event(s) #3 deleted"),
                                                 (5, "#5 test.event5 test:5")])
def test_a_deleted_event_first_middle_or_last_is_detected_and_named(chain, sequence, named):
    sql_behind_the_app("DELETE FROM audit_auditevent WHERE sequence = %s", [sequence])
    result = verify_fails_naming(named)
    if sequence == 5:
        assert any("last event(s) were deleted" in p for p in result.problems)


def test_deleting_the_last_event_and_rewinding_the_head_row_is_caught_by_the_checkpoint_file(chain):
    sql_behind_the_app("DELETE FROM audit_auditevent WHERE sequence = 5")
    ev4 = AuditEvent.objects.get(sequence=4)
    old = AuditChainHead.objects.get()
    # Even a perfectly re-signed head row (as if the attacker had the key) leaves the file ahead.
    from portal.audit.services import event_summary, head_signature

    summary = event_summary(ev4)
    sig = head_signature(chain_id=old.chain_id, sequence=4, hash=ev4.hash, summary=summary)
    AuditChainHead.objects.filter(pk=1).update(sequence=4, hash=ev4.hash, summary=summary, signature=sig)
    result = verify_fails_naming("the checkpoint file records #5 test.event5")
    assert len(result.problems) == 1


def test_a_rehash_done_by_sql_without_the_key_is_detected(chain):
    event = AuditEvent.objects.get(sequence=2)
    event.after = {"i": 2000}
    forged = hashlib.sha256(event_payload(event)).hexdigest()
    sql_behind_the_app("UPDATE audit_auditevent SET after = %s, hash = %s WHERE sequence = 2", [json.dumps({"i": 2000}), forged])
    sql_behind_the_app("UPDATE audit_auditevent SET prev_hash = %s WHERE sequence = 3", [forged])
    verify_fails_naming("event #2 (test.event2 test:2")


def test_a_forged_head_row_is_detected(chain):
    AuditChainHead.objects.filter(pk=1).update(summary="#5 nothing to see")
    verify_fails_naming("invalid signature")


def test_the_orm_refuses_to_update_or_delete_events(chain):
    event = AuditEvent.objects.get(sequence=1)
    event.action = "changed"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(sequence=1).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert audit_verify().ok


def test_postgres_refuses_sql_updates_and_deletes_of_events(chain):
    if connection.vendor != "postgresql":
        pytest.skip("the trigger exists on PostgreSQL only (SQLite relies on the ORM guard)")
    from django.db import DatabaseError, transaction

    for sql in ("UPDATE audit_auditevent SET action = 'x' WHERE sequence = 1",
                "DELETE FROM audit_auditevent WHERE sequence = 1"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_form_one_unbroken_chain(settings, tmp_path):
    from portal.testing.cast import build_cast

    cast = build_cast()
    errors = []

    def worker(n):
        try:
            for i in range(10):
                audit_record(actor=cast.a.uploader, action="test.concurrent", object_id=f"{n}-{i}")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert list(AuditEvent.objects.values_list("sequence", flat=True)) == list(range(1, 41))
    result = audit_verify()
    assert result.ok, result.problems


# --- what gets recorded ---------------------------------------------------------------------------

def actions_since(seq: int) -> list[str]:
    return list(AuditEvent.objects.filter(sequence__gt=seq).values_list("action", flat=True))


def last_seq() -> int:
    return AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0


def test_every_api_write_and_image_read_leaves_an_event(client, cast):
    client.force_login(cast.a.uploader)
    seq = last_seq()
    patient = client.post(reverse("api-patient-list"), {"center": str(cast.a.center.pk)},
                          content_type="application/json").json()
    assert actions_since(seq) == ["patient.create"]

    seq = last_seq()
    session = client.post(reverse("api-session-list"), {"patient": patient["id"], "acquisition_date": "2024-02-03"},
                          content_type="application/json").json()
    assert actions_since(seq) == ["session.create"]

    seq = last_seq()
    client.patch(reverse("api-session-detail", kwargs={"pk": session["id"]}), {"objective": "40x"},
                 content_type="application/json")
    assert actions_since(seq) == ["session.update"]

    seq = last_seq()
    body = client.post(reverse("api-session-image-upload", kwargs={"pk": session["id"]}),
                       {"files": [png_upload("a.png"), png_upload("b.png")]}).json()
    assert actions_since(seq) == ["image.create", "image.create"]
    image_id = body["created"][0]["id"]

    seq = last_seq()
    client.patch(reverse("api-image-detail", kwargs={"pk": image_id}), {"um_per_px": 0.2},
                 content_type="application/json")
    assert actions_since(seq) == ["image.update"]

    for name, action in (("api-image-file", "image.read.file"), ("api-image-display", "image.read.display")):
        seq = last_seq()
        response = client.get(reverse(name, kwargs={"pk": image_id}))
        assert response.status_code == 200
        event = AuditEvent.objects.get(sequence__gt=seq)
        assert (event.action, event.object_id, event.actor_username) == (action, image_id, "a_uploader")
        assert event.center_id == cast.a.center.pk and event.request_id

    seq = last_seq()
    listed = client.get(reverse("api-image-list"), {"session": session["id"]}).json()
    [event] = AuditEvent.objects.filter(sequence__gt=seq)
    assert event.action == "image.read.thumbnails"
    assert sorted(event.after["images"]) == sorted(i["id"] for i in listed["results"])

    seq = last_seq()
    client.get(reverse("imaging:session-detail", kwargs={"pk": session["id"]}))
    [event] = AuditEvent.objects.filter(sequence__gt=seq)  # one event for the whole page of thumbnails
    assert event.action == "image.read.thumbnails" and len(event.after["images"]) == 2


def test_a_refused_request_records_the_attempt_and_nothing_of_another_center(client, cast):
    image = make_image(cast.a)
    client.force_login(cast.b.uploader)
    seq = last_seq()
    assert client.get(reverse("api-image-file", kwargs={"pk": image.pk})).status_code == 404
    assert actions_since(seq) == ["access.refused"]  # the attempt, not a read
    event = AuditEvent.objects.get(sequence__gt=seq)
    assert (event.actor_username, event.object_type, event.object_id) == ("b_uploader", "imaging.image", str(image.pk))
    assert event.after == {"action": "imaging.read", "reason": "other_center"} and event.before is None


# --- the auditor's pages --------------------------------------------------------------------------

def test_the_auditor_lists_filters_and_exports_events(client, cast):
    make_image(cast.a)
    make_image(cast.b)
    client.force_login(cast.auditor)
    page = client.get(reverse("audit:event-list"), {"center": str(cast.b.center.pk), "action": "image."})
    assert page.status_code == 200
    events = list(page.context["page"])
    assert events and all(e.center_id == cast.b.center.pk and e.action.startswith("image.") for e in events)

    response = client.get(reverse("audit:event-export"), {"user": "a_uploader"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("sequence,occurred_at,actor_username")
    assert len(lines) > 1 and all(",a_uploader," in line for line in lines[1:])
    assert AuditEvent.objects.filter(action="audit.export", actor_username="auditor").exists()


def test_only_auditors_and_superusers_reach_the_audit_pages(client, cast):
    for user in (cast.a.admin, cast.a.uploader):
        client.force_login(user)
        assert client.get(reverse("audit:event-list")).status_code == 403
        assert client.get(reverse("audit:event-export")).status_code == 403
    client.force_login(cast.superuser)
    assert client.get(reverse("audit:event-list")).status_code == 200


def test_upload_with_a_file_uses_the_stored_image_not_the_original(client, cast):
    """Sanity: reading an image records the stored file's id and nothing else of the original."""
    session = make_image(cast.a).session
    client.force_login(cast.a.uploader)
    body = client.post(reverse("api-session-image-upload", kwargs={"pk": session.pk}),
                       {"files": [SimpleUploadedFile("secret-name.png", png_upload().read())]}).json()
    event = AuditEvent.objects.filter(action="image.create").order_by("-sequence").first()
    assert "secret-name" not in json.dumps(event.after)
    assert event.object_id == body["created"][0]["id"]
