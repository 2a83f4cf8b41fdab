"""The policy table and the shared gate: one not-found answer, refusals of existing objects audited."""
from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import PermissionDenied

from portal.audit.models import AuditEvent
from portal.centers.access import access_center, center_gate
from portal.centers.models import Role
from portal.centers.policy import MODEL_OUTPUT_ACTIONS, REFUSED_OPENLY, ROLE_ACTIONS, Action, roles_for
from portal.core.errors import NotFound


def test_the_policy_table_names_every_role_and_every_action_is_granted_to_someone():
    assert set(ROLE_ACTIONS) == set(Role.values)
    assert all(roles_for(action) for action in Action)
    assert REFUSED_OPENLY <= set(Action) and MODEL_OUTPUT_ACTIONS <= set(Action)


def test_blinded_roles_get_no_imaging_review_or_registry():
    for role in (Role.VALIDATOR, Role.STAIN_TECHNICIAN):
        assert not ROLE_ACTIONS[role] & {Action.IMAGING_READ, Action.REVIEW_VIEW, Action.MODELS_READ, Action.JOBS_RUN}


def _refusals():
    return list(AuditEvent.objects.filter(action="access.refused").order_by("sequence"))


def test_another_centers_object_is_not_found_and_the_attempt_is_audited(cast):
    with pytest.raises(NotFound):
        access_center(user=cast.b.reviewer, id=cast.a.center.pk)
    [event] = _refusals()
    assert event.actor == cast.b.reviewer and event.center_id == cast.a.center.pk
    assert (event.object_type, event.object_id) == ("centers.center", str(cast.a.center.pk))
    assert event.after == {"action": "center.read", "reason": "other_center"}


def test_an_absent_object_is_the_same_not_found_and_records_nothing(cast):
    with pytest.raises(NotFound):
        access_center(user=cast.b.reviewer, id=uuid.uuid4())
    assert _refusals() == []


def test_a_member_without_the_action_is_refused_openly_or_not_found_as_the_table_says(cast):
    with pytest.raises(PermissionDenied):
        center_gate(user=cast.a.uploader, center_id=cast.a.center.pk, action=Action.MODELS_MANAGE,
                    kind="centers.center", object_id=cast.a.center.pk)
    with pytest.raises(NotFound):
        center_gate(user=cast.a.validator, center_id=cast.a.center.pk, action=Action.IMAGING_READ,
                    kind="centers.center", object_id=cast.a.center.pk)
    assert _refusals() == []  # a member of the center is not a cross-center attempt


def test_refused_cross_center_requests_are_audited_once_each(cast, client):
    from portal.testing.jobs import build_job_world

    world = build_job_world(cast, cast.a)
    client.force_login(cast.b.reviewer)
    urls = [f"/api/v1/images/{world['image'].pk}/", f"/api/v1/result-sets/{world['result_set'].pk}/",
            f"/api/v1/jobs/{world['job'].pk}/", f"/api/v1/review/images/{world['image'].pk}/"]
    for url in urls:
        assert client.get(url).status_code == 404, url
    events = _refusals()
    assert [(e.object_type, e.object_id) for e in events] == [
        ("imaging.image", str(world["image"].pk)), ("results.resultset", str(world["result_set"].pk)),
        ("jobs.inferencejob", str(world["job"].pk)), ("imaging.image", str(world["image"].pk)),
    ]
    assert {e.actor_username for e in events} == {"b_reviewer"}
    assert all(e.center_id == cast.a.center.pk and set(e.after) == {"action", "reason"} for e in events)


def test_a_blinded_refusal_is_audited_with_its_reason(cast, client):
    from portal.imaging.models import SessionBlinding
    from portal.testing.jobs import build_job_world

    world = build_job_world(cast, cast.a)
    SessionBlinding.objects.create(user=cast.a.validator, session=world["session"], source="test")
    client.force_login(cast.a.validator)
    assert client.get(f"/api/v1/result-sets/{world['result_set'].pk}/").status_code == 404
    [event] = _refusals()
    assert event.after == {"action": "results.read", "reason": "blinded"}
