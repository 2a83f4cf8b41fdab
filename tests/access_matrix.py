"""The tenant-isolation matrix: every URL route declares who may call it, and a test checks it.

How to declare your routes (one file per app: ``tests/access_routes/<app>.py``)
------------------------------------------------------------------------------
``tests/test_access_matrix.py`` walks Django's URL resolver (every pattern, recursively, with
namespaces) and **fails for any route that has no declaration** (and for any declaration that matches
no route). Declarations are collected from ``tests.access_routes.<app>.ROUTES`` for every installed
``portal.<app>`` app. A route is identified by its full name, ``"<namespace>:<name>"`` for HTML pages
(``"imaging:session-detail"``) or the bare name for API routes (``"api-image-detail"``). A name
ending in ``*`` covers every route starting with the prefix (``"admin:*"``; use only for Django's own
admin); such a glob declares coverage and may still carry checks against a concrete ``url``.

Example (``tests/access_routes/review.py``)::

    from portal.testing.imaging import make_image
    from tests.access_matrix import GET, POST, Route, statuses

    ROUTES = [
        Route(
            name="review:image-detail",
            build=lambda cast, cc: {"image": make_image(cc)},     # cc = cast.a or cast.b
            kwargs=lambda objs: {"pk": objs["image"].pk},
            checks=[GET(own=statuses(200, validator=403, stain=403, auditor=404, anonymous=302))],
        ),
        Route(
            name="api-detection-list",
            build=lambda cast, cc: {"image": make_image(cc)},
            list_ids=lambda objs: [objs["image"].pk],                 # ids that only its center may see
            checks=[GET(own=statuses(200, validator=403, stain=403, auditor=403, anonymous=401))],
        ),
        Route(
            name="api-review-decide",
            build=...,
            kwargs=lambda objs: {"pk": objs["detection"].pk},
            checks=[POST(payload=lambda objs: {"decision": "accept"},
                         own=statuses(403, reviewer=200, center_admin=200, anonymous=401))],
        ),
    ]

What the test does for each declared route and each check
----------------------------------------------------------
* ``build(cast, center_cast)`` is called for center A and for center B (``cast`` is
  ``portal.testing.cast.Cast``, ``center_cast`` is ``cast.a``/``cast.b``; users ``uploader``,
  ``reviewer``, ``validator``, ``stain``, ``admin``). It returns anything (usually a dict of objects);
  ``kwargs(objs)`` turns it into URL kwargs and ``payload(objs)`` into the request body.
* **own center**: for each center role R the user ``cast.a.R`` requests the route built from center
  A's objects; the status must equal ``check.own[R]``.
* **other center**: the user ``cast.b.R`` requests the same route built from center A's objects; the
  status must equal ``check.other``. Default: 404 when the URL names an object (``kwargs`` given;
  never 403 for another center's object), else the same as the own center's status (a list answers,
  filtered). ``other=None`` skips these cells; a dict gives one status per role. Writes without an
  object in the URL (creates naming a foreign object in the payload) must give ``other`` explicitly.
  Each cell runs in a savepoint that is rolled back, so writes do not leak into the next cell.
* ``auditor``, ``anonymous`` and (when given) ``superuser`` request it once, built from center A.
* **list routes** (``list_ids`` given): every response body of every cell is searched for the ids of
  the objects of the center(s) the requesting user does not belong to; one found fails the test. With
  a 200 the own center's ids must appear (so the check is not vacuous) unless ``own_ids_must_appear``
  is False.
* Expected statuses are ints or tuples of accepted ints. Roles: ``uploader``, ``reviewer``,
  ``validator``, ``stain``, ``center_admin``, ``auditor``, ``anonymous`` and optional ``superuser``.
  ``statuses(default, **overrides)`` fills the five center roles plus auditor with ``default``;
  ``anonymous`` must always be given (302 for HTML pages behind login, 401 with ``WWW-Authenticate:
  Token`` for the API).
* Requests use ``client.force_login`` (no password hashing); JSON bodies by default, ``fmt="multipart"``
  for uploads. ``MEDIA_ROOT`` points at a temporary folder. A route whose URL needs kwargs but has no
  ``kwargs`` callable must set ``checks=[]`` and say why in ``note`` (e.g. Django admin details).

Keep the number of requests low: one ``GET`` per read route, one write check per write route.
"""
from __future__ import annotations

import fnmatch
import importlib
import importlib.util
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CENTER_ROLES: tuple[str, ...] = ("uploader", "reviewer", "validator", "stain", "center_admin")
"""Role names used in the matrix, mapped to ``portal.testing.cast`` cast attributes by ``CAST_ATTR``."""
CAST_ATTR = {"uploader": "uploader", "reviewer": "reviewer", "validator": "validator", "stain": "stain",
             "center_admin": "admin"}
GLOBAL_ROLES: tuple[str, ...] = ("auditor", "anonymous")
OPTIONAL_ROLES: tuple[str, ...] = ("superuser",)
ALL_ROLES = CENTER_ROLES + GLOBAL_ROLES + OPTIONAL_ROLES

Status = int | tuple[int, ...]


def statuses(default: Status | None = None, **overrides: Status) -> dict[str, Status]:
    """Expected status per role: ``default`` for the five center roles and the auditor, then overrides.

    ``statuses(200, validator=403, auditor=403, anonymous=302)``.
    """
    unknown = set(overrides) - set(ALL_ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}; expected {ALL_ROLES}")
    result: dict[str, Status] = {}
    if default is not None:
        result.update({role: default for role in CENTER_ROLES + ("auditor",)})
    result.update(overrides)
    return result


@dataclass(frozen=True)
class Check:
    """One request method against a route: expected status per role for own and other center."""

    method: str = "GET"
    own: Mapping[str, Status] = field(default_factory=dict)
    other: Status | Mapping[str, Status] | None | str = "default"
    payload: Callable[[Any], Any] | None = None
    fmt: str = "json"  # "json" or "multipart"
    query: Callable[[Any], dict] | None = None

    def other_for(self, role: str, *, has_object_in_url: bool) -> Status | None:
        """Expected status for the other center's user; by default 404 for a URL naming an object,
        and the same as the own center's for a URL without one (a list: filtered, not refused)."""
        if self.other == "default":
            return 404 if has_object_in_url else self.own.get(role)
        if isinstance(self.other, Mapping):
            return self.other.get(role)
        return self.other


def GET(*, own: Mapping[str, Status], other: Status | Mapping[str, Status] | None | str = "default", **kw) -> Check:  # noqa: N802
    return Check(method="GET", own=own, other=other, **kw)


def POST(*, own: Mapping[str, Status], other: Status | Mapping[str, Status] | None | str = "default", **kw) -> Check:  # noqa: N802
    return Check(method="POST", own=own, other=other, **kw)


def PATCH(*, own: Mapping[str, Status], other: Status | Mapping[str, Status] | None | str = "default", **kw) -> Check:  # noqa: N802
    return Check(method="PATCH", own=own, other=other, **kw)


def PUT(*, own: Mapping[str, Status], other: Status | Mapping[str, Status] | None | str = "default", **kw) -> Check:  # noqa: N802
    return Check(method="PUT", own=own, other=other, **kw)


def DELETE(*, own: Mapping[str, Status], other: Status | Mapping[str, Status] | None | str = "default", **kw) -> Check:  # noqa: N802
    return Check(method="DELETE", own=own, other=other, **kw)


@dataclass(frozen=True)
class Route:
    """The access declaration of one route (or of a glob of routes, e.g. ``admin:*``)."""

    name: str
    checks: list[Check] = field(default_factory=list)
    build: Callable[[Any, Any], Any] | None = None
    kwargs: Callable[[Any], dict] | None = None
    list_ids: Callable[[Any], Iterable[Any]] | None = None
    own_ids_must_appear: bool = True
    url: str | None = None  # a concrete URL to request for a glob declaration
    per_center: bool = True  # False: the route has no center data (login, schema); no other-center cells
    note: str = ""

    def covers(self, route_name: str) -> bool:
        if self.name.endswith("*"):
            return fnmatch.fnmatchcase(route_name, self.name)
        return route_name == self.name

    def validate(self) -> list[str]:
        problems = []
        for check in self.checks:
            missing = [r for r in CENTER_ROLES + GLOBAL_ROLES if r not in check.own]
            if missing:
                problems.append(f"{self.name} {check.method}: no expected status for {missing}")
            unknown = set(check.own) - set(ALL_ROLES)
            if unknown:
                problems.append(f"{self.name} {check.method}: unknown roles {sorted(unknown)}")
        return problems


# --- URL configuration ---------------------------------------------------------------------------

@dataclass(frozen=True)
class UrlEntry:
    key: str  # "ns:name", or "ns:<unnamed path>" for unnamed patterns
    name: str | None
    path: str
    needs_kwargs: bool


def iter_url_entries(resolver=None, namespaces: tuple[str, ...] = (), prefix: str = ""):
    """Every URL pattern of the configuration, recursively, with its namespaced name."""
    from django.urls import URLPattern, URLResolver, get_resolver

    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            ns = namespaces + ((pattern.namespace,) if pattern.namespace else ())
            yield from iter_url_entries(pattern, ns, route)
        elif isinstance(pattern, URLPattern):
            full = ":".join(namespaces + (pattern.name,)) if pattern.name else ":".join(
                namespaces + (f"<unnamed {route}>",)
            )
            needs = "<" in route or "(?P" in route
            yield UrlEntry(key=full, name=pattern.name, path=route, needs_kwargs=needs)


def portal_app_modules() -> list[str]:
    from django.apps import apps

    return [cfg.name for cfg in apps.get_app_configs() if cfg.name.startswith("portal.")]


def collect_routes() -> list[Route]:
    """All declarations from ``tests.access_routes.<app>.ROUTES`` of installed portal apps."""
    routes: list[Route] = []
    for module_name in portal_app_modules():
        name = f"tests.access_routes.{module_name.rsplit('.', 1)[-1]}"
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        routes.extend(getattr(module, "ROUTES", []))
    return routes


def undeclared_routes(routes: list[Route] | None = None) -> list[UrlEntry]:
    routes = collect_routes() if routes is None else routes
    return [e for e in iter_url_entries() if not any(r.covers(e.key) for r in routes)]


def stale_declarations(routes: list[Route] | None = None) -> list[str]:
    routes = collect_routes() if routes is None else routes
    keys = [e.key for e in iter_url_entries()]
    return [r.name for r in routes if not any(r.covers(k) for k in keys)]


def count_cells(routes: list[Route] | None = None) -> int:
    """How many (route, method, role, center) requests the matrix makes."""
    routes = collect_routes() if routes is None else routes
    total = 0
    for route in routes:
        for check in route.checks:
            total += len([r for r in check.own if r in CENTER_ROLES]) * (2 if route.per_center else 1)
            total += len([r for r in check.own if r not in CENTER_ROLES])
    return total
