"""Password change (old password counted by django-axes) and reset by e-mail, with the configured
validators; both audited."""
from __future__ import annotations

import re

from django.core import mail
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.testing.cast import PASSWORD

NEW_PASSWORD = "a-much-better-passphrase-42"


def test_a_user_changes_their_password_with_the_old_one(client, cast):
    user = cast.a.reviewer
    client.force_login(user)
    url = reverse("accounts:password-change")
    assert client.get(url).status_code == 200
    wrong = client.post(url, {"old_password": "not-it", "new_password1": NEW_PASSWORD,
                              "new_password2": NEW_PASSWORD})
    assert wrong.status_code == 200 and "incorrectly" in wrong.content.decode()
    assert AuditEvent.objects.filter(action="auth.login.failed", after__username=user.username).exists()
    weak = client.post(url, {"old_password": PASSWORD, "new_password1": "short", "new_password2": "short"})
    assert weak.status_code == 200 and "too short" in weak.content.decode()
    done = client.post(url, {"old_password": PASSWORD, "new_password1": NEW_PASSWORD,
                             "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("accounts:password-change-done")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert client.get("/").status_code == 200  # still logged in
    assert AuditEvent.objects.filter(action="auth.password.change", actor=user).exists()


def test_wrong_old_passwords_lock_the_change_form_like_the_login(client, cast, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client.force_login(cast.a.reviewer)
    url = reverse("accounts:password-change")
    for _ in range(3):
        client.post(url, {"old_password": "guess", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    response = client.post(url, {"old_password": PASSWORD, "new_password1": NEW_PASSWORD,
                                 "new_password2": NEW_PASSWORD})
    assert response.status_code == 429
    cast.a.reviewer.refresh_from_db()
    assert cast.a.reviewer.check_password(PASSWORD)


def test_a_forgotten_password_is_reset_through_the_mailed_link(client, cast):
    user = cast.a.uploader
    user.email = "uploader@example.org"
    user.save()
    response = client.post(reverse("accounts:password-reset"), {"email": "uploader@example.org"})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:password-reset-done")
    unknown = client.post(reverse("accounts:password-reset"), {"email": "nobody@example.org"})
    assert unknown.status_code == 302 and unknown["Location"] == response["Location"]  # same answer
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/password/reset/[^/]+/[^/]+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200 and "new_password1" in form.content.decode()
    set_url = form.redirect_chain[-1][0] if form.redirect_chain else link
    weak = client.post(set_url, {"new_password1": "12345678901", "new_password2": "12345678901"})
    assert weak.status_code == 200 and "entirely numeric" in weak.content.decode()
    done = client.post(set_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("accounts:password-reset-complete")
    assert client.get(link, follow=True).content.decode().count("not valid") == 1  # used once only
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.filter(action="auth.password.reset.request").count() == 2
    assert AuditEvent.objects.filter(action="auth.password.reset", actor=user).exists()

