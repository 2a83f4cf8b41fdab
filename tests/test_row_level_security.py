"""PostgreSQL row-level security by center (portal/centers/rls.py): a query that forgets the center
filter, run in a center-1 request or task, returns nothing of center 2; system work sees every center;
every table with a center link has a policy. The PostgreSQL tests work as a role that is neither owner
nor superuser (``DATABASE_SCOPE_ROLE``, created here when the run does not set one)."""
from __future__ import annotations

import os

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.test import RequestFactory

from portal.centers.models import Center
from portal.centers.rls import (
    AUDIT_TABLE,
    POLICY_NAME,
    RLS_EXEMPT,
    RLS_TABLES,
    center_scope,
    request_scope,
    system_scope,
)

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql",
                                   reason="row-level security is a PostgreSQL feature (SQLite: no-op)")
TEST_ROLE = os.environ.get("DATABASE_SCOPE_ROLE") or "sp_rls_app"


def _center_linked_tables() -> dict[str, str]:
    """Every table whose rows belong to a center: a foreign key to Center, or to a table that does
    (auto-created many-to-many tables included), with the path that says why."""
    models = apps.get_models(include_auto_created=True)
    linked: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for model in models:
            table = model._meta.db_table
            if table in linked or model is Center:
                continue
            for field in model._meta.concrete_fields:
                target = getattr(field, "related_model", None)
                if target is None:
                    continue
                if target is Center:
                    linked[table] = f"{field.name} -> Center"
                elif target._meta.db_table in linked:
                    linked[table] = f"{field.name} -> {target._meta.db_table}"
                else:
                    continue
                changed = True
                break
    return linked


def test_every_table_with_a_center_link_is_listed_for_row_level_security():
    """A new model with a center link (directly or through its parent) fails here until it is in
    ``RLS_TABLES`` (and installed by a migration) or exempted with a reason."""
    linked = _center_linked_tables()
    assert "imaging_image" in linked and "results_detection" in linked  # the walk sees both kinds
    listed = set(RLS_TABLES) | {AUDIT_TABLE} | set(RLS_EXEMPT)
    missing = {table: why for table, why in linked.items() if table not in listed}
    assert not missing, f"center-linked tables without a row-level security policy: {missing}"


@postgres_only
@pytest.mark.django_db
def test_every_listed_table_has_its_policy_installed_and_forced():
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                       "EXISTS (SELECT 1 FROM pg_policies p WHERE p.tablename = c.relname AND p.policyname = %s) "
                       "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE n.nspname = 'public' AND c.relkind = 'r'", [POLICY_NAME])
        state = {name: (enabled, forced, policy) for name, enabled, forced, policy in cursor.fetchall()}
    for table in [*RLS_TABLES, AUDIT_TABLE, *_center_linked_tables()]:
        if table in RLS_EXEMPT:
            continue
        assert state[table] == (True, True, True), f"{table}: (enabled, forced, policy) = {state[table]}"


@pytest.fixture
def app_role(db, settings):
    """Scopes work as the non-privileged app role (created in this test's transaction when missing)."""
    from portal.centers.management.commands.db_app_role import app_role_problems, app_role_setup

    app_role_setup(TEST_ROLE, create=True)
    assert app_role_problems(TEST_ROLE) == []
    settings.DATABASE_SCOPE_ROLE = TEST_ROLE
    return TEST_ROLE


@pytest.fixture
def two_centers(cast, storage):
    from portal.testing.review import make_image, make_reviewable_image

    image_a = make_reviewable_image(cast.a, n=2)
    image_b = make_reviewable_image(cast.b, n=3)
    make_image(cast.b)
    return cast, image_a, image_b


def _everything_visible() -> dict[str, set]:
    """Unfiltered reads of center-owned data: ORM ``all()`` and raw SQL, no center filter anywhere."""
    from portal.imaging.models import Image, ImageSession, Patient
    from portal.results.models import Detection, ResultSet

    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT center_id::text FROM imaging_image")
        raw_image_centers = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT DISTINCT r.center_id::text FROM results_detection d "
                       "JOIN results_resultset r ON r.id = d.result_set_id")
        raw_detection_centers = {row[0] for row in cursor.fetchall()}
    return {
        "patients": {str(c) for c in Patient.objects.values_list("center_id", flat=True)},
        "sessions": {str(c) for c in ImageSession.objects.values_list("center_id", flat=True)},
        "images": {str(c) for c in Image.objects.all().values_list("center_id", flat=True)},
        "result_sets": {str(c) for c in ResultSet.objects.values_list("center_id", flat=True)},
        "detections": {str(c) for c in Detection.objects.values_list("result_set__center_id", flat=True)},
        "raw_images": raw_image_centers,
        "raw_detections": raw_detection_centers,
    }


@postgres_only
def test_a_center_1_request_sees_nothing_of_center_2_without_any_filter(app_role, two_centers):
    cast, *_ = two_centers
    request = RequestFactory().get("/")
    request.user = cast.a.uploader
    with request_scope(request):
        seen = _everything_visible()
    a = str(cast.a.center.pk)
    assert seen == {name: {a} for name in seen}
    with system_scope("test: both centers"):
        assert _everything_visible()["images"] == {a, str(cast.b.center.pk)}


@postgres_only
def test_a_center_1_task_sees_nothing_of_center_2_without_any_filter(app_role, two_centers):
    cast, *_ = two_centers
    with center_scope([cast.a.center.pk]):
        seen = _everything_visible()
    assert seen == {name: {str(cast.a.center.pk)} for name in seen}


@postgres_only
def test_an_anonymous_request_and_an_unscoped_app_role_see_nothing(app_role, two_centers):
    from portal.imaging.models import Image

    request = RequestFactory().get("/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    with request_scope(request):
        assert not Image.objects.exists()
    with center_scope([]):
        assert not Image.objects.exists()


@postgres_only
def test_a_center_1_scope_cannot_write_into_center_2(app_role, two_centers):
    from portal.imaging.models import Patient

    cast, image_a, image_b = two_centers
    with center_scope([cast.a.center.pk]), pytest.raises(ProgrammingError, match="row-level security"), \
            transaction.atomic():
        Patient.objects.create(center=cast.b.center, code="P-RLS-X", created_by=cast.a.uploader)
    with center_scope([cast.a.center.pk]):
        # Another center's row cannot be changed either: the update finds nothing.
        assert Patient.objects.filter(pk=image_b.session.patient_id).update(code="stolen") == 0


@postgres_only
def test_the_request_scope_follows_a_user_who_authenticates_mid_request(app_role, two_centers):
    """DRF token authentication sets the user inside the view: the scope is resolved again."""
    from django.contrib.auth.models import AnonymousUser

    from portal.imaging.models import Image

    cast, *_ = two_centers
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    with request_scope(request):
        assert not Image.objects.exists()
        request.user = cast.b.uploader
        assert {str(c) for c in Image.objects.values_list("center_id", flat=True)} == {str(cast.b.center.pk)}


@postgres_only
def test_another_centers_image_is_404_and_the_refusal_still_audited(app_role, two_centers, client):
    from portal.audit.models import AuditEvent

    cast, image_a, image_b = two_centers
    client.force_login(cast.a.uploader)
    before = AuditEvent.objects.filter(action="access.refused").count()
    response = client.get(f"/api/v1/images/{image_b.pk}/")
    assert response.status_code == 404
    refused = AuditEvent.objects.filter(action="access.refused").order_by("sequence")
    assert refused.count() == before + 1
    assert refused.last().object_id == str(image_b.pk)
    assert client.get(f"/api/v1/images/{image_a.pk}/").status_code == 200


@postgres_only
def test_the_app_role_check_refuses_a_superuser(db):
    from portal.centers.management.commands.db_app_role import app_role_problems

    user = connection.settings_dict["USER"] or "postgres"
    assert "is a superuser" in app_role_problems(user)

