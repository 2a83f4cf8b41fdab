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
from django.test.utils import CaptureQueriesContext

from portal.centers.models import Center
from portal.centers.rls import (
    AUDIT_PENDING_TABLE,
    AUDIT_TABLE,
    POLICY_NAME,
    RLS_EXEMPT,
    RLS_TABLES,
    center_scope,
    request_scope,
    system_scope,
)
from portal.testing.db import logged_in_as, postgres_only

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
    listed = set(RLS_TABLES) | {AUDIT_TABLE, AUDIT_PENDING_TABLE} | set(RLS_EXEMPT)
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
    for table in [*RLS_TABLES, AUDIT_TABLE, AUDIT_PENDING_TABLE, *_center_linked_tables()]:
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



def _deploy_check_errors() -> list:
    from django.core.checks import run_checks

    return run_checks(include_deployment_checks=True, tags=["database_rls"])


@postgres_only
def test_the_deploy_check_fails_when_the_app_connects_as_a_superuser(db, settings):
    settings.DATABASE_RLS, settings.DATABASE_SCOPE_ROLE = True, ""
    user = connection.settings_dict["USER"] or "postgres"
    errors = _deploy_check_errors()
    assert [error.id for error in errors] == ["centers.E001"]
    assert f"The database role {user!r} bypasses row-level security: is a superuser" in errors[0].msg
    assert "db_app_role" in errors[0].hint


@postgres_only
def test_the_deploy_check_passes_when_connected_as_the_app_role(db, settings):
    from portal.centers.management.commands.db_app_role import app_role_setup

    app_role_setup(TEST_ROLE, create=True)
    settings.DATABASE_RLS, settings.DATABASE_SCOPE_ROLE = True, ""
    with logged_in_as(TEST_ROLE):
        assert _deploy_check_errors() == []
        settings.DATABASE_SCOPE_ROLE = TEST_ROLE  # a scope role that is the login role itself
        assert _deploy_check_errors() == []


@postgres_only
def test_the_deploy_check_fails_for_a_superuser_login_even_with_an_app_scope_role(db, settings):
    """Every query outside a request or task scope (system scopes, the reset between requests) runs as the
    login role: a non-privileged ``DATABASE_SCOPE_ROLE`` does not make a superuser login safe."""
    from portal.centers.management.commands.db_app_role import app_role_setup

    app_role_setup(TEST_ROLE, create=True)
    settings.DATABASE_RLS, settings.DATABASE_SCOPE_ROLE = True, TEST_ROLE
    user = connection.settings_dict["USER"] or "postgres"
    errors = _deploy_check_errors()
    assert [error.id for error in errors] == ["centers.E001"]
    assert f"The database role {user!r} bypasses row-level security: is a superuser" in errors[0].msg
    assert "DATABASE_SCOPE_ROLE does not make a privileged login safe" in errors[0].hint


@postgres_only
def test_the_deploy_check_refuses_a_role_with_createrole(db, settings):
    """A CREATEROLE role may grant itself the owner's role (PostgreSQL 15 and earlier: any role)."""
    from portal.centers.management.commands.db_app_role import app_role_setup

    app_role_setup(TEST_ROLE, create=True)
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE sp_rls_creator NOLOGIN CREATEROLE")
    settings.DATABASE_RLS, settings.DATABASE_SCOPE_ROLE = True, "sp_rls_creator"
    with logged_in_as(TEST_ROLE):
        errors = _deploy_check_errors()
    assert len(errors) == 1 and "'sp_rls_creator'" in errors[0].msg and "has CREATEROLE" in errors[0].msg


@postgres_only
def test_the_deploy_check_names_a_role_that_owns_the_tables(db, settings):
    """The owner is refused even when it is not a superuser: it could switch the forced policies off."""
    from portal.centers.management.commands.db_app_role import app_role_setup

    app_role_setup(TEST_ROLE, create=True)
    settings.DATABASE_RLS = True
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE sp_rls_owner NOLOGIN")
        cursor.execute("ALTER TABLE imaging_image OWNER TO sp_rls_owner")
        cursor.execute("CREATE ROLE sp_rls_member NOLOGIN")  # a member of the owner may act as the owner
        cursor.execute("GRANT sp_rls_owner TO sp_rls_member")
    with logged_in_as(TEST_ROLE):
        settings.DATABASE_SCOPE_ROLE = "sp_rls_owner"
        errors = _deploy_check_errors()
        assert len(errors) == 1 and "'sp_rls_owner'" in errors[0].msg and "owns 1 tables" in errors[0].msg
        settings.DATABASE_SCOPE_ROLE = "sp_rls_member"
        errors = _deploy_check_errors()
        assert len(errors) == 1 and "'sp_rls_member'" in errors[0].msg and "owns 1 tables" in errors[0].msg


@pytest.mark.django_db
def test_the_deploy_check_is_silent_without_row_level_security(settings):
    settings.DATABASE_RLS, settings.DATABASE_SCOPE_ROLE = False, ""  # on SQLite it is never in use
    assert _deploy_check_errors() == []


@pytest.mark.django_db
def test_the_app_role_command_lets_the_role_log_in_with_the_password_from_the_environment(monkeypatch):
    from django.core.management import CommandError, call_command

    if connection.vendor != "postgresql":
        with pytest.raises(CommandError, match="PostgreSQL"):
            call_command("db_app_role", "sp_rls_login", "--create")
        return
    monkeypatch.setenv("SP_RLS_TEST_PASSWORD", "s3cret-for-the-test")
    call_command("db_app_role", "sp_rls_login", "--create", "--password-env", "SP_RLS_TEST_PASSWORD")
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolcanlogin, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'sp_rls_login'")
        assert cursor.fetchone() == (True, False, False)
        cursor.execute("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = 'sp_rls_login'")
        assert cursor.fetchone() == (True,)
    monkeypatch.delenv("SP_RLS_TEST_PASSWORD")
    with pytest.raises(CommandError, match="SP_RLS_TEST_PASSWORD"):
        call_command("db_app_role", "sp_rls_login", "--password-env", "SP_RLS_TEST_PASSWORD")


# --- the validation studies' part of a user's scope (portal.validation.apps.study_centers_sql) ------------

@pytest.fixture
def three_center_study(cast, storage):
    """A draft study run by center A with centers A, B and C taking part (C: a stain technician, an
    uploader and a reviewer of its own)."""
    from portal.centers.models import Role
    from portal.centers.services import center_create, membership_grant
    from portal.testing.cast import make_user
    from portal.testing.validation import make_draft_study

    center_c = center_create(code="CC", name="Center CC")
    c_users = {}
    for name, role in (("stain", Role.STAIN_TECHNICIAN), ("uploader", Role.UPLOADER), ("reviewer", Role.REVIEWER)):
        c_users[name] = make_user(f"c_{name}")
        membership_grant(user=c_users[name], center=center_c, role=role)
    study = make_draft_study(cast, cast.a, centers=[cast.a.center, cast.b.center, center_c])
    return study, center_c, c_users


def _scope_of(user) -> set[str]:
    """The centers the database puts in ``user``'s request scope."""
    from portal.centers.rls import user_centers_sql

    with system_scope("test: a user's scope"), connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT c::text FROM ({user_centers_sql(user.pk)}) AS u(c)")
        return {row[0] for row in cursor.fetchall()}


@postgres_only
def test_plain_members_of_a_participating_center_get_no_other_center_in_scope(three_center_study, cast):
    from portal.validation import services

    study, center_c, c_users = three_center_study
    a, b, c = str(cast.a.center.pk), str(cast.b.center.pk), str(center_c.pk)
    # Draft: reviewers (no validation role) and stain technicians (not yet theirs) get nothing of the study.
    for user in (cast.b.reviewer, cast.b.stain, c_users["reviewer"], c_users["stain"]):
        assert _scope_of(user) == {c if user.username.startswith("c_") else b}, user.username
    assert _scope_of(cast.a.reviewer) == {a}  # a member of the running center who does not run studies
    assert _scope_of(cast.b.validator) == {b}  # a validator of B, not one of this study's
    services.study_open(actor=cast.a.admin, study=study)
    # Open: uploaders (pickers of drafts only), reviewers and validators of other studies still get nothing.
    for user in (cast.b.uploader, cast.b.reviewer, cast.b.validator, c_users["uploader"]):
        assert _scope_of(user) == {c if user.username.startswith("c_") else b}, user.username


@postgres_only
def test_the_users_a_study_needs_get_its_centers_in_scope(three_center_study, cast):
    from portal.validation import services

    study, center_c, c_users = three_center_study
    a, b, c = str(cast.a.center.pk), str(cast.b.center.pk), str(center_c.pk)
    assert _scope_of(cast.a.admin) == {a, b, c}  # runs the study, draft or not
    # Pickers of a draft: the running center (the study, its fields and picks), not the third center.
    assert _scope_of(cast.b.uploader) == {b, a}
    assert _scope_of(c_users["uploader"]) == {c, a}
    assert _scope_of(cast.a.validator) == {a}  # a validator of a draft has nothing to do yet
    services.study_open(actor=cast.a.admin, study=study)
    assert _scope_of(cast.a.validator) == {a, b, c}  # scores the cells of every center
    assert _scope_of(cast.a.admin) == {a, b, c}
    # Stain technicians past draft: the running center, besides their own; not the other participant.
    assert _scope_of(cast.b.stain) == {b, a}
    assert _scope_of(c_users["stain"]) == {c, a}


@postgres_only
def test_a_reviewer_of_a_participating_center_cannot_read_the_study_and_its_stain_technician_can(
        app_role, three_center_study, cast):
    from portal.validation import services
    from portal.validation.models import Study

    study, *_ = three_center_study
    services.study_open(actor=cast.a.admin, study=study)

    def sees_study(user) -> bool:
        request = RequestFactory().get("/")
        request.user = user
        with request_scope(request):
            return Study.objects.filter(pk=study.pk).exists()  # no center filter: only the policy

    assert not sees_study(cast.b.reviewer)
    assert not sees_study(cast.b.uploader)
    assert sees_study(cast.b.stain)
    assert sees_study(cast.a.validator)

@postgres_only
def test_pending_read_events_are_center_isolated_yet_folded_from_any_scope(app_role, cast):
    """A center-1 request does not see center 2's pending read events and cannot delete any, yet its own
    read's fold chains them all (the fold's transaction-local ``app.audit_folding``)."""
    from portal.audit.models import AuditEvent, PendingAuditEvent
    from portal.audit.services import audit_pending_fold, audit_record_read, pending_mac

    audit_record_read(actor=cast.b.uploader, action="image.read.test", center=cast.b.center, object_id="b")
    audit_pending_fold()  # a fold earlier in this (test) transaction, then one pending row of center 2
    row = PendingAuditEvent(
        occurred_at=AuditEvent.objects.get().occurred_at, actor=cast.b.uploader, center=cast.b.center,
        action="image.read.test", object_id="b2", nonce="n" * 32)
    row.mac = pending_mac(row)  # as audit_record_read signs it
    row.save()
    request = RequestFactory().get("/")
    request.user = cast.a.uploader
    with request_scope(request):
        # Center 2's row is not this request's to see (and the earlier fold's setting did not outlive it).
        assert PendingAuditEvent.objects.count() == 0
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_pendingauditevent")
            assert cursor.rowcount == 0
        audit_record_read(actor=cast.a.uploader, action="image.read.test", center=cast.a.center, object_id="a")
    with system_scope("test: the whole trail"):
        assert PendingAuditEvent.objects.count() == 0
        assert list(AuditEvent.objects.values_list("object_id", flat=True)) == ["b", "b2", "a"]


@postgres_only
def test_the_app_role_cannot_delete_an_unchained_pending_read_by_setting_the_folds_flag(app_role, cast,
                                                                                       monkeypatch):
    """``app.audit_folding`` is a session setting anyone may set (SQL injected as the app role, no key):
    with it on, the app role still deletes no pending row that no event of the chain names."""
    from portal.audit import services
    from portal.audit.models import PendingAuditEvent
    from portal.audit.services import audit_pending_fold, audit_record_read

    audit_record_read(actor=cast.a.uploader, action="image.read.test", center=cast.a.center, object_id="a")
    audit_pending_fold()
    original = services.audit_pending_fold
    monkeypatch.setattr(services, "audit_pending_fold",  # the read's own fold finds the head taken
                        lambda *, wait=True, **kwargs: original(wait=wait, **kwargs) if wait else 0)
    audit_record_read(actor=cast.a.uploader, action="image.read.test", center=cast.a.center, object_id="a2")
    request = RequestFactory().get("/")
    request.user = cast.a.uploader
    with request_scope(request):  # the app role, the row's own center
        assert PendingAuditEvent.objects.count() == 1
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('app.audit_folding', 'on', true)")
            cursor.execute("DELETE FROM audit_pendingauditevent")
            assert cursor.rowcount == 0
            cursor.execute("SELECT set_config('app.audit_folding', 'off', true)")
        assert PendingAuditEvent.objects.count() == 1
        assert audit_pending_fold() == 1  # the fold chains it, then deletes it
        assert not PendingAuditEvent.objects.exists()


@postgres_only
def test_a_write_in_one_centers_scope_chains_every_centers_pending_reads_first(app_role, cast, monkeypatch):
    """Whether any read event is pending is asked whatever the writer's scope (``audit_pending_any()``):
    a center-1 write does not see center 2's pending read, yet chains it before itself."""
    from portal.audit import services
    from portal.audit.models import AuditEvent, PendingAuditEvent

    original = services.audit_pending_fold
    monkeypatch.setattr(services, "audit_pending_fold",  # the read's own fold finds the head taken
                        lambda *, wait=True, **kwargs: original(wait=wait, **kwargs) if wait else 0)
    services.audit_record_read(actor=cast.b.uploader, action="image.read.test", center=cast.b.center,
                               object_id="b")
    request = RequestFactory().get("/")
    request.user = cast.a.uploader
    with request_scope(request):
        assert not PendingAuditEvent.objects.exists()  # not this request's to see
        services.audit_record(actor=cast.a.uploader, action="test.write", center=cast.a.center, object_id="a")
    with system_scope("test: the whole trail"):
        assert PendingAuditEvent.objects.count() == 0
        assert list(AuditEvent.objects.values_list("object_id", flat=True)) == ["b", "a"]


def _statements_sent(monkeypatch) -> list[str]:
    """Every statement text handed to psycopg from now on (the scope's settings included)."""
    import psycopg

    sent: list[str] = []
    original = psycopg.Cursor.execute

    def execute(self, query, *args, **kwargs):
        sent.append(query.decode() if isinstance(query, bytes) else str(query))
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    return sent


def _visible_image_centers() -> set[str]:
    from portal.imaging.models import Image

    return {str(c) for c in Image.objects.values_list("center_id", flat=True)}


@postgres_only
def test_a_requests_scope_is_written_once_riding_on_its_first_query(app_role, two_centers, monkeypatch):
    cast, *_ = two_centers
    request = RequestFactory().get("/")
    request.user = cast.a.uploader
    sent = _statements_sent(monkeypatch)
    with request_scope(request), CaptureQueriesContext(connection) as queries:
        seen = _everything_visible()
    assert seen == {name: {str(cast.a.center.pk)} for name in seen}
    assert len(sent) == len(queries) == 7, "the scope took a round trip of its own"
    assert [i for i, text in enumerate(sent) if "set_config(" in text] == [0], "written more than once"


@postgres_only
def test_a_token_api_request_pays_no_round_trip_for_its_scope(app_role, two_centers, client, monkeypatch):
    from rest_framework.authtoken.models import Token

    cast, *_ = two_centers
    token = Token.objects.create(user=cast.a.uploader)
    sent = _statements_sent(monkeypatch)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/sessions/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    assert {row["center_id"] for row in response.json()["results"]} == {str(cast.a.center.pk)}
    assert len(sent) == len(queries)
    # Nobody (before the token is read), then the user: each on the next query.
    assert sum("set_config('app.user_id'" in text for text in sent) == 2


@postgres_only
def test_the_next_request_on_the_connection_sees_only_its_own_users_centers(app_role, two_centers):
    from django.contrib.auth.models import AnonymousUser

    cast, *_ = two_centers
    first = RequestFactory().get("/")
    first.user = cast.a.uploader
    with request_scope(first):
        assert _visible_image_centers() == {str(cast.a.center.pk)}
    second = RequestFactory().get("/")
    second.user = AnonymousUser()
    with request_scope(second):
        assert _visible_image_centers() == set()  # the token lookup of the next request sees nothing
        second.user = cast.b.uploader
        assert _visible_image_centers() == {str(cast.b.center.pk)}


@postgres_only
def test_a_scope_that_rode_on_a_failed_query_is_written_again_by_the_next(app_role, two_centers):
    """The settings are undone with the failed statement: the next query must not run under the scope the
    connection held before (here: nobody's, before the user authenticated)."""
    from django.contrib.auth.models import AnonymousUser
    from django.db.utils import DataError

    cast, *_ = two_centers
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    with request_scope(request):
        assert _visible_image_centers() == set()
        request.user = cast.a.uploader
        savepoint = transaction.savepoint()
        with pytest.raises(DataError), connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
        transaction.savepoint_rollback(savepoint)
        assert _visible_image_centers() == {str(cast.a.center.pk)}


class _RolledBack(Exception):
    pass


def _centers_seen_in_a_rolled_back_block(block) -> set[str]:
    """The image centers one query sees inside ``block`` (an atomic block), which then rolls back."""
    with pytest.raises(_RolledBack) as raised, block:
        raise _RolledBack(_visible_image_centers())
    return raised.value.args[0]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_scope_undone_by_a_rolled_back_transaction_is_written_again_in_the_next(app_role, cast, storage):
    """The settings written in a transaction that rolls back are undone (the previous scope's come back):
    the next transaction must not take them for its own, though its atomic block is the same object (a
    function decorated with ``transaction.atomic``) or lands at the same address."""
    from portal.testing.review import make_image

    make_image(cast.a)
    make_image(cast.b)
    a, b = str(cast.a.center.pk), str(cast.b.center.pk)
    with center_scope([a]):
        assert _visible_image_centers() == {a}
    decorated = transaction.atomic()  # what @transaction.atomic enters on every call
    with center_scope([b]):
        assert [_centers_seen_in_a_rolled_back_block(decorated) for _ in range(3)] == [{b}] * 3
        assert [_centers_seen_in_a_rolled_back_block(transaction.atomic()) for _ in range(30)] == [{b}] * 30
        assert _visible_image_centers() == {b}
    request = RequestFactory().get("/")
    request.user = cast.b.uploader
    with request_scope(request):  # a request that needed a system scope for a moment
        assert _visible_image_centers() == {b}
        with system_scope("test: the center of a refused object"):
            assert _visible_image_centers() == {a, b}
        assert [_centers_seen_in_a_rolled_back_block(decorated) for _ in range(3)] == [{b}] * 3
        assert [_centers_seen_in_a_rolled_back_block(transaction.atomic()) for _ in range(30)] == [{b}] * 30


def _protection() -> dict[str, tuple[bool, bool, bool]]:
    """``{table: (enabled, forced, has our policy)}`` for every table of the schema."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                       "EXISTS (SELECT 1 FROM pg_policies p WHERE p.tablename = c.relname "
                       "AND p.policyname IN (%s, 'audit_append')) "
                       "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE n.nspname = 'public' AND c.relkind = 'r'", [POLICY_NAME])
        return {name: (enabled, forced, policy) for name, enabled, forced, policy in cursor.fetchall()}


@postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize("name", ["0005_row_level_security_pending_audit", "0003_row_level_security_new_tables"])
def test_reversing_a_later_install_keeps_the_earlier_tables_protected(name):
    """Migrating centers back before 0005 (or 0003) takes row-level security off the tables that migration
    added only; forward again puts it back everywhere."""
    import importlib

    migration = importlib.import_module(f"portal.centers.migrations.{name}").Migration
    (operation,) = migration.operations
    added = {"0005_row_level_security_pending_audit": {AUDIT_PENDING_TABLE},
             "0003_row_level_security_new_tables": {"core_notification", "training_trainingjob",
                                                    "validation_stainimage"}}[name]
    older = {"imaging_image", "results_detection", "centers_membership", AUDIT_TABLE}
    with connection.schema_editor() as editor:
        operation.reverse_code(apps, editor)
    state = _protection()
    assert {table: state[table] for table in added} == {table: (False, False, False) for table in added}
    assert {table: state[table] for table in older} == {table: (True, True, True) for table in older}
    with connection.schema_editor() as editor:
        operation.code(apps, editor)
    state = _protection()
    assert {table: state[table] for table in added | older} == {table: (True, True, True) for table in added | older}
