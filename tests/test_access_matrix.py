"""Tenant-isolation matrix generated from Django's URL configuration (see tests/access_matrix.py).

Every URL pattern must be declared in some ``tests/access_routes/<app>.py``; each declared check is then run
for every role, against the own center's objects and the other center's objects. Every refusal of the
other center's object named in the URL (404) must leave exactly one ``access.refused`` audit event.
"""
from __future__ import annotations

import json
import uuid
from http.cookies import SimpleCookie

import pytest
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.urls import reverse

from portal.audit.models import AuditEvent
from tests.access_matrix import (
    CAST_ATTR,
    CENTER_ROLES,
    Check,
    Route,
    collect_routes,
    count_cells,
    iter_url_entries,
    stale_declarations,
    undeclared_routes,
)

ROUTES = collect_routes()
# Routes that share a ``build`` run one after another, so its objects are made once for all of them.
CHECKED = sorted((r for r in ROUTES if r.checks), key=lambda r: (r.build.__module__, r.build.__qualname__)
                 if r.build else ("", ""))


def test_every_url_route_has_an_access_declaration():
    missing = undeclared_routes(ROUTES)
    assert not missing, "Routes without an entry in any tests/access_routes/<app>.py:\n" + "\n".join(
        f"  {e.key}  ({e.path})" for e in missing
    )


def test_every_access_declaration_matches_a_route():
    stale = stale_declarations(ROUTES)
    assert not stale, f"Declarations that match no URL route: {stale}"


def test_access_declarations_are_complete():
    problems = [p for r in ROUTES for p in r.validate()]
    names = [r.name for r in ROUTES]
    problems += [f"{n} declared twice" for n in set(names) if names.count(n) > 1]
    for entry in iter_url_entries():
        covering = [r for r in ROUTES if r.covers(entry.key)]
        if entry.needs_kwargs and any(r.checks and r.kwargs is None and r.url is None for r in covering):
            problems.append(f"{entry.key} needs URL kwargs but its declaration gives none")
    assert not problems, "\n".join(problems)
    assert count_cells(ROUTES) > 0


@pytest.fixture
def cast(module_cast, db):
    """The two-center cast, built once for the module; each test's writes are still rolled back."""
    return module_cast


class Worlds:
    """The objects a route's ``build`` makes for center A and B, made once for consecutive routes sharing
    that ``build`` (each in a savepoint undone when another ``build`` is needed). Every cell runs in its
    own rolled-back savepoint, so no route sees another route's writes; routes of another ``build`` do not
    see these objects."""

    def __init__(self, blocker, cast):
        self.blocker, self.cast = blocker, cast
        self.key = None
        self.savepoint = None
        self.objs: dict = {}

    def _drop(self):
        if self.savepoint is not None:
            transaction.savepoint_rollback(self.savepoint)
            transaction.savepoint_commit(self.savepoint)
        self.key, self.savepoint, self.objs = None, None, {}

    def get(self, route: Route) -> dict:
        key = (route.build, route.per_center)
        if key != self.key:
            with self.blocker.unblock():
                self._drop()
                self.savepoint = transaction.savepoint()
                try:
                    self.objs = {"a": route.build(self.cast, self.cast.a) if route.build else None,
                                 "b": route.build(self.cast, self.cast.b) if route.build and route.per_center
                                 else None}
                except BaseException:
                    self._drop()
                    raise
                self.key = key
        return self.objs

    def close(self):
        with self.blocker.unblock():
            self._drop()


@pytest.fixture(scope="module")
def worlds(module_transaction, module_cast):
    pool = Worlds(module_transaction, module_cast)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def session_cookies(module_transaction, module_cast) -> dict:
    """Every cast user logged in once for the module: user id -> session cookie. The sessions live in the
    module transaction; what a cell does to them (a request saves its session) is rolled back with the
    cell. The module must take less than SESSION_COOKIE_AGE (the idle timeout, 30 minutes)."""
    from django.conf import settings
    from django.test import Client

    from portal.testing.cast import otp_verify_session

    cast = module_cast
    users = [*cast.a.users.values(), *cast.b.users.values(), cast.auditor, cast.superuser]
    cookies = {}
    with module_transaction.unblock():
        for user in users:
            client = Client()
            client.force_login(user)
            otp_verify_session(client, user)  # module-wide: before the per-test login patch applies
            cookies[user.pk] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return cookies


@pytest.fixture
def objs(route, worlds):
    """The objects of ``route`` (set up before the test's own transaction: it nests inside them)."""
    return worlds.get(route)


def _ids(values) -> list[str]:
    out = []
    for value in values or ():
        out.append(str(value))
        if isinstance(value, uuid.UUID):
            out.append(value.hex)
    return out


def _url(route: Route, objs) -> str:
    if route.url:
        return route.url
    kwargs = route.kwargs(objs) if route.kwargs else {}
    return reverse(route.name, kwargs={k: str(v) for k, v in kwargs.items()})


def _request(client, check: Check, url: str, objs):
    query = check.query(objs) if check.query else None
    if check.method == "GET":
        return client.get(url, data=query)
    payload = check.payload(objs) if check.payload else None
    if query:
        from urllib.parse import urlencode

        url = f"{url}?{urlencode(query)}"
    method = getattr(client, check.method.lower())
    if check.fmt == "multipart":
        return method(url, data=payload or {})
    return method(url, data=json.dumps(payload if payload is not None else {}), content_type="application/json")


def _body(response) -> str:
    if getattr(response, "streaming", False):
        return ""
    try:
        return response.content.decode("utf-8", errors="replace")
    except Exception:  # noqa: BLE001
        return ""


def _accepts(expected, status: int) -> bool:
    return status in expected if isinstance(expected, tuple) else status == expected


@pytest.mark.parametrize("route", CHECKED, ids=[r.name for r in CHECKED])
def test_access_matrix(route: Route, objs, session_cookies, cast, client):
    list_ids = {k: _ids(route.list_ids(v)) if (route.list_ids and v is not None) else [] for k, v in objs.items()}
    url = _url(route, objs["a"])
    failures: list[str] = []

    def cell(label: str, user, check: Check, expected, *, forbidden: list[str], must_see: list[str]):
        with transaction.atomic():
            client.cookies = SimpleCookie()  # anonymous, or logged in as ``user`` (and nothing else)
            if user is not None:
                client.cookies[settings.SESSION_COOKIE_NAME] = session_cookies[user.pk]
            seq = AuditEvent.objects.aggregate(m=Max("sequence"))["m"] or 0
            try:
                response = _request(client, check, url, objs["a"])
            except Exception as exc:  # noqa: BLE001 - a 500 is a failure of the cell, keep going
                failures.append(f"{check.method} {url} as {label}: raised {type(exc).__name__}: {exc}")
                transaction.set_rollback(True)
                return
            refusals = AuditEvent.objects.filter(sequence__gt=seq, action="access.refused").count()
            transaction.set_rollback(True)
        if label.endswith("@other") and route.kwargs is not None and response.status_code == 404 and refusals != 1:
            failures.append(f"{check.method} {url} as {label}: {refusals} access.refused audit events, expected 1")
        if not _accepts(expected, response.status_code):
            failures.append(
                f"{check.method} {url} as {label}: status {response.status_code}, expected {expected}"
                f" body={_body(response)[:200]!r}"
            )
            return
        if route.list_ids and response.status_code < 400:
            body = _body(response)
            leaked = [i for i in forbidden if i in body]
            if leaked:
                failures.append(f"{check.method} {url} as {label}: other center's ids in body {leaked[:3]}")
            if must_see and route.own_ids_must_appear and response.status_code == 200:
                if not any(i in body for i in must_see):
                    failures.append(f"{check.method} {url} as {label}: own center's objects missing from list")

    for check in route.checks:
        for role in CENTER_ROLES:
            attr = CAST_ATTR[role]
            if role in check.own:
                cell(f"{role}@own", getattr(cast.a, attr), check, check.own[role],
                     forbidden=list_ids["b"], must_see=list_ids["a"])
            other = check.other_for(role, has_object_in_url=route.kwargs is not None)
            if route.per_center and other is not None:
                cell(f"{role}@other", getattr(cast.b, attr), check, other,
                     forbidden=list_ids["a"], must_see=[])
        if "auditor" in check.own:
            cell("auditor", cast.auditor, check, check.own["auditor"],
                 forbidden=list_ids["a"] + list_ids["b"], must_see=[])
        if "anonymous" in check.own:
            cell("anonymous", None, check, check.own["anonymous"],
                 forbidden=list_ids["a"] + list_ids["b"], must_see=[])
        if "superuser" in check.own:
            cell("superuser", cast.superuser, check, check.own["superuser"], forbidden=[], must_see=[])

    assert not failures, f"{route.name}: {len(failures)} cell(s) failed\n" + "\n".join(failures)
