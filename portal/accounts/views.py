from __future__ import annotations

from django.contrib.auth import views as auth_views

from portal.accounts.forms import ThrottledAuthenticationForm


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass
