"""A request reads each user's memberships once (``memberships_cached``); a membership written or deleted
meanwhile is seen at once; outside a request every call reads the database."""
from __future__ import annotations

import uuid

from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.centers.access import center_ids_for, user_may
from portal.centers.models import Membership, Role
from portal.centers.policy import Action
from portal.centers.selectors import center_ids_for_user, memberships_cached, user_roles_in_center
from portal.centers.services import center_create, membership_grant


def test_a_request_reads_a_users_memberships_once_for_every_check(cast):
    user = cast.a.uploader
    with memberships_cached(), CaptureQueriesContext(connection) as queries:
        assert center_ids_for(user, Action.IMAGING_READ) == [cast.a.center.pk]
        assert center_ids_for(user, Action.IMAGING_WRITE) == [cast.a.center.pk]
        assert user_may(user, cast.a.center.pk, Action.IMAGING_READ)
        assert user_roles_in_center(user, str(cast.a.center.pk)) == {Role.UPLOADER}
        assert user_roles_in_center(user, cast.b.center.pk) == set()
    assert len(queries) == 1


def test_outside_a_request_every_check_reads_the_database(cast):
    with CaptureQueriesContext(connection) as queries:
        center_ids_for_user(cast.a.uploader)
        center_ids_for_user(cast.a.uploader)
    assert len(queries) == 2


def test_a_membership_granted_or_revoked_during_the_request_is_seen_at_once(cast):
    user = cast.a.uploader
    center = center_create(code=f"M{uuid.uuid4().hex[:5].upper()}", name="Cache center")
    with memberships_cached():
        assert center.pk not in center_ids_for_user(user)
        membership_grant(user=user, center=center, role=Role.REVIEWER)
        assert user_roles_in_center(user, center.pk) == {Role.REVIEWER}
        Membership.objects.filter(user=user, center=center).delete()
        assert center.pk not in center_ids_for_user(user)
        assert not user_may(user, center.pk, Action.REVIEW_VIEW)


def test_each_user_has_their_own_entry_and_the_anonymous_and_inactive_have_none(cast):
    from django.contrib.auth.models import AnonymousUser

    with memberships_cached():
        assert center_ids_for_user(cast.a.uploader) == [cast.a.center.pk]
        assert center_ids_for_user(cast.b.uploader) == [cast.b.center.pk]
        assert center_ids_for_user(AnonymousUser()) == []
        cast.a.reviewer.is_active = False
        assert center_ids_for_user(cast.a.reviewer) == []


def test_a_role_filter_and_a_bad_center_id_answer_as_the_database_would(cast):
    with memberships_cached():
        assert center_ids_for_user(cast.a.admin, [Role.UPLOADER]) == []
        assert center_ids_for_user(cast.a.admin, [Role.CENTER_ADMIN]) == [cast.a.center.pk]
        assert user_roles_in_center(cast.a.admin, cast.a.center) == {Role.CENTER_ADMIN}
        assert user_roles_in_center(cast.a.admin, "not-a-uuid") == set()


class _RolledBack(Exception):
    pass


def test_a_membership_read_before_its_block_rolls_back_is_not_kept(cast):
    """A read later in the same atomic block sees the uncommitted membership: it must not outlive the
    block's rollback (nor a savepoint's)."""
    import pytest
    from django.db import transaction

    user = cast.a.uploader
    center = center_create(code=f"M{uuid.uuid4().hex[:5].upper()}", name="Rolled back center")
    with memberships_cached():
        with pytest.raises(_RolledBack), transaction.atomic():
            membership_grant(user=user, center=center, role=Role.CENTER_ADMIN)
            assert user_roles_in_center(user, center.pk) == {Role.CENTER_ADMIN}
            raise _RolledBack
        assert user_roles_in_center(user, center.pk) == set()
        assert center.pk not in center_ids_for_user(user)


def test_reads_are_cached_again_once_the_write_commits(cast, django_capture_on_commit_callbacks):
    from django.db import transaction

    user = cast.a.uploader
    center = center_create(code=f"M{uuid.uuid4().hex[:5].upper()}", name="Committed center")
    with memberships_cached():
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            membership_grant(user=user, center=center, role=Role.REVIEWER)
            assert user_roles_in_center(user, center.pk) == {Role.REVIEWER}
        with CaptureQueriesContext(connection) as queries:
            assert user_roles_in_center(user, center.pk) == {Role.REVIEWER}
            assert user_roles_in_center(user, center.pk) == {Role.REVIEWER}
    assert len(queries) == 1
