"""Audit of logins, failed logins, logouts and lockouts (Django's auth signals and django-axes')."""
from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from portal.audit.services import audit_record


def _where(request) -> dict:
    return {"path": request.path[:200]} if request is not None else {}


@receiver(user_logged_in, dispatch_uid="audit_login")
def audit_login(sender, request, user, **kwargs):
    audit_record(actor=user, action="auth.login", object_type="accounts.user", object_id=str(user.pk),
                 after=_where(request), request=request)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def audit_logout(sender, request, user, **kwargs):
    if user is not None:
        audit_record(actor=user, action="auth.logout", object_type="accounts.user", object_id=str(user.pk),
                     request=request)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    """A wrong password anywhere (login page, admin login, e-signature, password change)."""
    username = str(credentials.get("username") or "")[:150]
    audit_record(actor=None, action="auth.login.failed", object_type="accounts.user",
                 after={"username": username, **_where(request)}, request=request)


@receiver(user_locked_out, dispatch_uid="audit_lockout")
def audit_lockout(sender, request, username, ip_address, **kwargs):
    audit_record(actor=None, action="auth.lockout", object_type="accounts.user",
                 after={"username": str(username or "")[:150], **_where(request)}, request=request)
