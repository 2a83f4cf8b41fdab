"""One throttle for every password check (django-axes): the login page, the admin login and the
e-signature each refuse the 6th guess after 5 wrong passwords, for that username *from that address*
only; the same user elsewhere still gets in. All of it is audited."""
from __future__ import annotations

import pytest
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.testing import validation as vt
from portal.testing.cast import PASSWORD
from portal.validation import services as validation_services

ATTACKER = "203.0.113.7"
WORKSTATION = "198.51.100.20"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.AXES_FAILURE_LIMIT = 5


def actions_since(seq: int) -> list[str]:
    return list(AuditEvent.objects.filter(sequence__gt=seq).values_list("action", flat=True))


def last_seq() -> int:
    return AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0


def login(client, username, password, address):
    return client.post(reverse("accounts:login"), {"username": username, "password": password},
                       REMOTE_ADDR=address)


def test_the_login_page_refuses_the_sixth_guess_but_not_the_user_elsewhere(client, cast):
    seq = last_seq()
    for _ in range(4):
        response = login(client, "a_reviewer", "wrong-password", ATTACKER)
        assert response.status_code == 200 and "_auth_user_id" not in client.session
    login(client, "a_reviewer", "wrong-password", ATTACKER)  # the 5th locks this user from this address
    response = login(client, "a_reviewer", PASSWORD, ATTACKER)  # even the right password is refused now
    assert response.status_code == 429
    assert "Too many wrong passwords" in response.content.decode()
    assert "_auth_user_id" not in client.session

    other = client.__class__()
    assert login(other, "a_reviewer", PASSWORD, WORKSTATION).status_code == 302  # the real user, at work
    assert other.get("/").status_code == 200
    third = client.__class__()
    assert login(third, "a_uploader", PASSWORD, ATTACKER).status_code == 302  # another user, same address

    actions = actions_since(seq)
    assert actions.count("auth.login.failed") >= 5
    assert actions.count("auth.lockout") >= 1
    assert actions.count("auth.login") == 2
    failed = AuditEvent.objects.filter(sequence__gt=seq, action="auth.login.failed").first()
    assert failed.after["username"] == "a_reviewer" and failed.ip_address == ATTACKER


def test_the_admin_login_refuses_the_sixth_guess(client, cast):
    seq = last_seq()
    url = reverse("admin:login")
    for _ in range(5):
        client.post(url, {"username": "root", "password": "wrong-password"}, REMOTE_ADDR=ATTACKER)
    response = client.post(url, {"username": "root", "password": PASSWORD}, REMOTE_ADDR=ATTACKER)
    assert response.status_code == 429 and "Too many wrong passwords" in response.content.decode()
    elsewhere = client.__class__().post(url, {"username": "root", "password": PASSWORD}, REMOTE_ADDR=WORKSTATION)
    assert elsewhere.status_code != 429  # asked for the second factor, not locked out
    assert "auth.lockout" in actions_since(seq)


def test_the_e_signature_refuses_the_sixth_guess_with_a_json_message(client, cast):
    study = vt.make_open_study(cast, cast.a)
    membership = study.validators.get(user=cast.a.validator)
    vt.score_all(study, membership)
    url = reverse("api-validation-my-sign", kwargs={"study_id": study.pk})
    client.force_login(cast.a.validator)
    seq = last_seq()
    for _ in range(4):
        response = client.post(url, {"password": "wrong-password"}, content_type="application/json",
                               REMOTE_ADDR=ATTACKER)
        assert response.status_code == 400 and "password" in response.json()["message"]
    client.post(url, {"password": "wrong-password"}, content_type="application/json", REMOTE_ADDR=ATTACKER)
    response = client.post(url, {"password": PASSWORD}, content_type="application/json", REMOTE_ADDR=ATTACKER)
    assert response.status_code == 429
    assert "Too many wrong passwords" in response.json()["message"]
    assert int(response["Retry-After"]) > 0
    assert not study.signatures.exists()

    response = client.post(url, {"password": PASSWORD}, content_type="application/json", REMOTE_ADDR=WORKSTATION)
    assert response.status_code == 201, response.content
    actions = actions_since(seq)
    assert actions.count("validation.sign.failed") >= 4
    assert actions.count("auth.login.failed") >= 5 and "auth.lockout" in actions
    assert "validation.sign" in actions


def test_wrong_signature_passwords_count_towards_the_login_lockout(client, cast):
    """One throttle: guesses on the signature and on the login page add up."""
    study = vt.make_open_study(cast, cast.a)
    membership = study.validators.get(user=cast.a.validator)
    vt.score_all(study, membership)
    url = reverse("api-validation-my-sign", kwargs={"study_id": study.pk})
    client.force_login(cast.a.validator)
    for _ in range(3):
        client.post(url, {"password": "wrong"}, content_type="application/json", REMOTE_ADDR=ATTACKER)
    anonymous = client.__class__()
    for _ in range(2):
        login(anonymous, "a_validator", "wrong", ATTACKER)
    assert login(anonymous, "a_validator", PASSWORD, ATTACKER).status_code == 429


def test_a_signature_without_a_request_is_still_counted(cast):
    study = vt.make_open_study(cast, cast.a)
    membership = study.validators.get(user=cast.a.validator)
    vt.score_all(study, membership)
    from portal.core.errors import DomainError

    for _ in range(5):
        with pytest.raises(DomainError):
            validation_services.study_sign(actor=cast.a.validator, study=study, membership=membership,
                                           password="wrong")
    with pytest.raises(DomainError, match="Too many wrong passwords") as refused:
        validation_services.study_sign(actor=cast.a.validator, study=study, membership=membership,
                                       password=PASSWORD)
    assert refused.value.status_code == 429
