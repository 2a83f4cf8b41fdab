from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from portal.accounts import services


def client_ip(request) -> str | None:
    """The client's address (REMOTE_ADDR; a proxy in front must set it correctly)."""
    return request.META.get("REMOTE_ADDR") or None


class ThrottledAuthenticationForm(AuthenticationForm):
    """The login form, refusing a user or address after too many failures."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed logins. Wait a few minutes and try again.",
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        ip_address = client_ip(self.request) if self.request else None
        if username and services.login_is_throttled(username=username, ip_address=ip_address):
            raise forms.ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if username:
                services.login_failure_record(username=username, ip_address=ip_address)
            raise
        services.login_failures_clear(username=username)
        return cleaned
