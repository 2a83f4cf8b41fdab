from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from portal.accounts import selectors, services
from portal.accounts.forms import ThrottledAuthenticationForm


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_token(request):
    """The user's own API token for scripts (``Authorization: Token <key>``): issue or replace it
    (the new key is shown once, on this response only) or revoke it."""
    new_key = None
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "issue":
            new_key = services.api_token_issue(user=request.user, request=request)
        elif action == "revoke":
            if services.api_token_revoke(user=request.user, request=request):
                messages.success(request, "Your API token was revoked: scripts using it are refused from now on.")
            return redirect("accounts:api-token")
        else:
            return HttpResponseBadRequest("Unknown action: use 'issue' or 'revoke'.")
    return render(request, "accounts/api_token.html", {
        "new_key": new_key, "created_at": selectors.api_token_created_at(user=request.user),
    })
