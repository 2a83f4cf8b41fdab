"""Per-center time zones: stored UTC, shown in the center's zone with the zone named; exports stay UTC."""
from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from portal.audit.models import AuditEvent
from portal.audit.services import audit_record
from portal.centers.services import center_create, center_time_zone_set
from portal.centers.timezones import SESSION_KEY
from portal.testing.cast import login_verified
from portal.testing.validation import make_unblinded_study
from portal.validation.models import Study

NOON_UTC = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)  # 18:00 in Shanghai, 11:00 in Berlin


@pytest.fixture
def zoned(cast):
    center_time_zone_set(center=cast.a.center, time_zone="Asia/Shanghai")
    center_time_zone_set(center=cast.b.center, time_zone="Europe/Berlin")
    return cast


def test_a_center_takes_only_iana_zone_names(db):
    with pytest.raises(ValidationError):
        center_create(code="C90", name="Nowhere", time_zone="Mars/Olympus_Mons")
    center = center_create(code="C91", name="Beijing", time_zone="Asia/Shanghai")
    assert center.time_zone == "Asia/Shanghai"
    with pytest.raises(ValidationError):
        center_time_zone_set(center=center, time_zone="CST+8")
    center.refresh_from_db()
    assert center.time_zone == "Asia/Shanghai"
    assert center_create(code="C92", name="Default").time_zone == "UTC"


def test_login_remembers_the_zone_of_the_users_centers(zoned):
    one_center = Client()
    login_verified(one_center, zoned.a.uploader)
    assert one_center.session[SESSION_KEY] == "Asia/Shanghai"
    from portal.centers.services import membership_grant

    membership_grant(user=zoned.a.reviewer, center=zoned.b.center, role="reviewer")
    two_zones = Client()
    login_verified(two_zones, zoned.a.reviewer)
    assert two_zones.session[SESSION_KEY] == "UTC"


def test_the_audit_trail_shows_each_event_in_its_centers_zone(zoned, client):
    with mock.patch("portal.audit.services.timezone.now", return_value=NOON_UTC):
        audit_record(actor=zoned.a.admin, action="zone.test", center=zoned.a.center, object_type="zone.a")
        audit_record(actor=zoned.b.admin, action="zone.test", center=zoned.b.center, object_type="zone.b")
    login_verified(client, zoned.auditor)
    page = client.get("/audit/?action=zone.test", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "2026年1月15日 18:00 (Asia/Shanghai)" in page
    assert "2026年1月15日 11:00 (Europe/Berlin)" in page
    english = client.get("/audit/?action=zone.test", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Jan. 15, 2026, 6 p.m. (Asia/Shanghai)" in english and "Jan. 15, 2026, 11 a.m. (Europe/Berlin)" in english
    # storage is UTC, and so is the machine export, whatever the reader's language
    assert {e.occurred_at for e in AuditEvent.objects.filter(action="zone.test")} == {NOON_UTC}
    exports = [b"".join(client.get("/audit/export.csv?action=zone.test", HTTP_ACCEPT_LANGUAGE=lang).streaming_content)
               for lang in ("en", "zh-hans")]
    assert exports[0] == exports[1]
    text = exports[0].decode()
    assert text.splitlines()[0].endswith(",center_time_zone")
    assert "2026-01-15T10:00:00+00:00" in text and "Asia/Shanghai" in text and "Europe/Berlin" in text


@pytest.mark.parametrize("zone, abbreviation", [("Asia/Shanghai", "CST"), ("Europe/Berlin", "CE")])
def test_report_times_are_in_the_study_centers_zone(cast, client, zone, abbreviation):
    study = make_unblinded_study(cast, cast.a)
    center_time_zone_set(center=cast.a.center, time_zone=zone)
    login_verified(client, cast.a.admin)
    page = client.get(f"/validation/studies/{study.pk}/report/").content.decode()
    study = Study.objects.get(pk=study.pk)
    local = study.opened_at.astimezone(ZoneInfo(zone))
    assert f"{local:%Y-%m-%d %H:%M} {local.tzname()}" in page and local.tzname().startswith(abbreviation)
    signed = study.signatures.first().signed_at.astimezone(ZoneInfo(zone))
    assert f"{signed:%Y-%m-%d %H:%M:%S} {signed.tzname()}" in page


def test_the_report_csv_is_the_same_in_every_language(cast, client):
    study = make_unblinded_study(cast, cast.a)
    center_time_zone_set(center=cast.a.center, time_zone="Asia/Shanghai")
    login_verified(client, cast.a.admin)
    bodies = [client.get(f"/validation/studies/{study.pk}/report.csv", HTTP_ACCEPT_LANGUAGE=lang).content
              for lang in ("en", "zh-hans")]
    assert bodies[0] == bodies[1]
    assert "+00:00" in bodies[0].decode()  # signatures: UTC ISO-8601
