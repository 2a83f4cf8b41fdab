"""Two-factor enforcement for signed-in browser sessions.

After the password, a session is *verified* (django-otp) only once a code was entered. Until then:
a user with a device is sent to the code page, a user whose role requires two-factor authentication
and who has no device is sent to enrolment, and neither can reach anything else (API calls with the
session cookie get a 403 JSON message). Token-authenticated API calls carry no session and are not
affected. Users of optional roles without a device pass.
"""
from __future__ import annotations

from urllib.parse import urlencode

from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from portal.accounts.selectors import user_has_otp_device, user_requires_otp

# The code and enrolment pages need the script catalog and the language switcher too.
ALLOWED_UNVERIFIED = {"accounts:otp-verify", "accounts:otp-enrol", "accounts:logout", "core:healthz", "ops:readyz",
                      "ops:metrics", "javascript-catalog", "accounts:language"}


class OTPRequiredMiddleware:
    """Keep a session that still owes its second factor on the code or enrolment page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        match = request.resolver_match
        if match is not None and match.view_name in ALLOWED_UNVERIFIED:
            return None
        if user_has_otp_device(user):
            target, message = "accounts:otp-verify", _("Enter the code from your authenticator app first.")
        elif user_requires_otp(user):
            target, message = "accounts:otp-enrol", _("Your role requires two-factor authentication: enrol first.")
        else:
            return None
        if request.path.startswith("/api/"):
            return JsonResponse({"message": message, "extra": {"url": reverse(target)}}, status=403)
        return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")


class UserLanguageMiddleware:
    """Use the language a signed-in user chose (``User.language``) over the cookie and ``Accept-Language``.

    Runs after ``LocaleMiddleware`` (which picks the cookie, else ``Accept-Language``, else English) and
    after authentication; users who chose nothing keep that choice.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        chosen = getattr(user, "language", "") if user is not None and user.is_authenticated else ""
        if chosen:
            translation.activate(chosen)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
