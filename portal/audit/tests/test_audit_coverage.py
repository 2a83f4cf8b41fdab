"""What the trail records besides writes: every thumbnail read through the API, every look at the audit
pages, logins and logouts (failed logins and lockouts: portal/accounts/tests/test_lockout.py)."""
from __future__ import annotations

from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.testing.cast import PASSWORD
from portal.testing.imaging import make_image


def test_every_api_thumbnail_read_is_audited(client, cast):
    image = make_image(cast.a)
    client.force_login(cast.a.reviewer)
    url = reverse("api-image-thumbnail", kwargs={"pk": image.pk})
    for _ in range(2):
        assert client.get(url).status_code == 200
    reads = AuditEvent.objects.filter(action="image.read.thumbnail", object_id=str(image.pk), actor=cast.a.reviewer)
    assert reads.count() == 2
    assert reads.first().center_id == cast.a.center.pk


def test_viewing_the_audit_pages_is_audited(client, cast):
    client.force_login(cast.auditor)
    assert client.get(reverse("audit:event-list"), {"action": "image."}).status_code == 200
    event = AuditEvent.objects.filter(action="audit.view", actor=cast.auditor).get()
    assert event.after == {"page": 1, "action": "image."}
    client.get(reverse("audit:event-export"))
    assert AuditEvent.objects.filter(action="audit.export", actor=cast.auditor).exists()


def test_logins_and_logouts_are_audited(client, cast):
    response = client.post(reverse("accounts:login"), {"username": "a_uploader", "password": PASSWORD},
                           REMOTE_ADDR="192.0.2.5")
    assert response.status_code == 302
    login = AuditEvent.objects.get(action="auth.login", actor=cast.a.uploader)
    assert login.ip_address == "192.0.2.5"
    client.post(reverse("accounts:logout"))
    assert AuditEvent.objects.filter(action="auth.logout", actor=cast.a.uploader).exists()
