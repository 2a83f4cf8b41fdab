"""Request id and Content-Security-Policy middleware."""
from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.utils import translation

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Give each request an id (from ``X-Request-ID`` when well-formed), echoed in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


class ContentSecurityPolicyMiddleware:
    """Send the ``CONTENT_SECURITY_POLICY`` setting on every response that has none."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response


class TranslationResetMiddleware:
    """After each response, drop the language the request activated (``LocaleMiddleware`` and
    ``accounts.middleware.UserLanguageMiddleware``), so work done later on the same thread (a test,
    a management command) uses the default language, not the last visitor's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            return self.get_response(request)
        finally:
            translation.deactivate()
