"""Lock and unblind need a confirmation and an e-signature (password re-entry), and both are audited."""
from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from portal.audit.models import AuditEvent
from portal.testing import validation as vt
from portal.testing.cast import PASSWORD
from portal.validation.models import StudyStatus


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _html(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_lock_api_refuses_a_missing_or_wrong_password_and_audits_the_failure(cast):
    study = vt.make_signed_study(cast, cast.a)
    admin = _api(cast.a.admin)
    url = f"/api/v1/validation/studies/{study.pk}/lock/"
    assert admin.post(url, {}, format="json").status_code == 400
    assert admin.post(url, {"password": "wrong"}, format="json").status_code == 400
    study.refresh_from_db()
    assert study.status == StudyStatus.OPEN
    assert AuditEvent.objects.filter(action="validation.study.lock.failed", actor=cast.a.admin).count() == 1


@pytest.mark.django_db
def test_the_lock_api_with_the_password_locks_and_records_the_signature(cast):
    study = vt.make_signed_study(cast, cast.a)
    r = _api(cast.a.admin).post(f"/api/v1/validation/studies/{study.pk}/lock/", {"password": PASSWORD},
                                format="json")
    assert r.status_code == 200, r.content
    study.refresh_from_db()
    assert study.status == StudyStatus.LOCKED
    event = AuditEvent.objects.get(action="validation.study.lock.signature")
    assert event.after["meaning"].startswith("I lock this study")
    assert event.after["scores_sha256"] == study.scores_sha256


@pytest.mark.django_db
def test_the_study_page_no_longer_locks_in_one_click(cast):
    study = vt.make_signed_study(cast, cast.a)
    r = _html(cast.a.admin).post(f"/validation/studies/{study.pk}/", {"action": "lock"})
    assert r.status_code == 302
    study.refresh_from_db()
    assert study.status == StudyStatus.OPEN
    page = _html(cast.a.admin).get(f"/validation/studies/{study.pk}/").content.decode()
    assert f'href="/validation/studies/{study.pk}/lock/"' in page


@pytest.mark.django_db
def test_unblinding_goes_through_a_confirmation_page_with_the_password(cast):
    from portal.validation import services

    study = vt.make_signed_study(cast, cast.a)
    services.study_lock_sign(actor=cast.a.admin, study=study, password=PASSWORD)
    client = _html(cast.a.admin)
    url = f"/validation/studies/{study.pk}/unblind/"
    page = client.get(url).content.decode()
    assert "I unblind this study" in page and 'type="password"' in page
    assert client.post(url, {"password": "wrong"}).status_code == 400
    study.refresh_from_db()
    assert study.status == StudyStatus.LOCKED
    r = client.post(url, {"password": PASSWORD})
    assert r.status_code == 302
    study.refresh_from_db()
    assert study.status == StudyStatus.UNBLINDED and study.results
    assert AuditEvent.objects.filter(action="validation.study.unblind.signature", actor=cast.a.admin).exists()
    assert AuditEvent.objects.filter(action="validation.study.unblind.failed", actor=cast.a.admin).exists()
