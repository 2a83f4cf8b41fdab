"""Operations endpoints: ``/readyz`` (no login; says which dependency failed, never why) and
``/metrics`` (Prometheus text; the ``METRICS_TOKEN`` bearer token, or a signed-in superuser)."""
from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from portal.ops.health import readiness
from portal.ops.metrics import metrics_text


@never_cache
@require_GET
def readyz(request):
    """200 when the database, the broker and the storage answer and the database role cannot bypass
    row-level security; 503 naming the checks that failed."""
    checks = readiness()
    ready = all(state == "ok" for state in checks.values())
    return JsonResponse({"status": "ready" if ready else "unready", "checks": checks}, status=200 if ready else 503)


def _bearer_token_matches(request) -> bool:
    expected = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if not expected or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), expected.encode())


@never_cache
@require_GET
def metrics(request):
    """Prometheus metrics for a scraper holding ``METRICS_TOKEN``, or a signed-in superuser."""
    user = request.user
    signed_in = user.is_authenticated and user.is_superuser and getattr(user, "is_verified", lambda: False)()
    if not (_bearer_token_matches(request) or signed_in):
        if user.is_authenticated:
            return JsonResponse({"message": "Only the metrics scraper and superusers read metrics.", "extra": {}},
                                status=403)
        response = JsonResponse({"message": "Authentication credentials were not provided.", "extra": {}},
                                status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
