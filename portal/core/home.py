"""The home page's "what waits for me" panels, contributed by the apps that know the work.

The core app cannot read the review, jobs or validation apps (they sit above it); each of them
registers a panel provider in its ``AppConfig.ready()``. A provider takes the request and returns
``None`` (nothing for this user) or a dict with ``template`` (included by ``core/home.html``), ``order``
(smaller first) and the template's context. Providers read through their app's selectors, which filter
by the user's centers and blinding.
"""
from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest

HomePanel = Callable[[HttpRequest], dict | None]

_PANELS: dict[str, HomePanel] = {}


def home_panel_register(name: str, provider: HomePanel) -> None:
    """Add (or replace, by ``name``) a home page panel provider."""
    _PANELS[name] = provider


def home_panels(request: HttpRequest) -> list[dict]:
    """The panels that have something for ``request.user``, in their ``order``."""
    panels = []
    for name, provider in _PANELS.items():
        panel = provider(request)
        if panel:
            panels.append({"name": name, **panel})
    return sorted(panels, key=lambda p: (p.get("order", 100), p["name"]))
