from __future__ import annotations

from django import forms
from django.contrib.auth.forms import PasswordChangeForm
from django.utils.translation import gettext_lazy as _

from portal.accounts import services
from portal.core.errors import DomainError


class CodeForm(forms.Form):
    """A six-digit code from the authenticator app, or a backup code."""

    token = forms.CharField(label=_("Code"), max_length=16, strip=True, widget=forms.TextInput(attrs={
        "autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}))


class CountedPasswordChangeForm(PasswordChangeForm):
    """Django's password change form whose old-password check is counted by django-axes."""

    def __init__(self, user, *args, request=None, **kwargs):
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        try:
            matches = services.password_check(user=self.user, password=old_password, request=self.request)
        except DomainError as exc:  # locked out (the lockout middleware answers 429)
            raise forms.ValidationError(exc.message, code="locked_out")
        if not matches:
            raise forms.ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password
