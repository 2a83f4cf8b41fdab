"""Adding or removing a study's validator by username gives one answer for "no such user" and "not
allowed", so an administrator cannot probe which accounts exist."""
from __future__ import annotations

from django.urls import reverse

from portal.testing import validation as vt
from portal.validation.services import STUDY_VALIDATOR_NOT_FOUND, VALIDATOR_NOT_FOUND


def _add(client, study, username):
    return client.post(reverse("api-validation-study-validators", kwargs={"study_id": study.pk}),
                       {"username": username}, content_type="application/json")


def test_adding_an_unknown_user_and_a_user_who_may_not_validate_give_the_same_answer(client, cast):
    study = vt.make_draft_study(cast, cast.a)
    client.force_login(cast.a.admin)
    unknown = _add(client, study, "no-such-person")
    other_center = _add(client, study, cast.b.validator.username)  # exists, but not in a center taking part
    not_validator = _add(client, study, cast.a.uploader.username)  # exists, no validator role
    answers = {(r.status_code, r.content) for r in (unknown, other_center, not_validator)}
    assert len(answers) == 1, answers
    assert unknown.status_code == 400
    assert unknown.json() == {"message": VALIDATOR_NOT_FOUND, "extra": {"field": "username"}}


def test_removing_an_unknown_user_and_a_user_who_is_not_the_studys_validator_give_the_same_404(client, cast):
    study = vt.make_draft_study(cast, cast.a, validators=("validator",))
    client.force_login(cast.a.admin)

    def delete(username):
        return client.delete(reverse("api-validation-study-validator-delete",
                                     kwargs={"study_id": study.pk, "username": username}))

    unknown, existing = delete("no-such-person"), delete(cast.a.validator2.username)
    assert unknown.status_code == existing.status_code == 404
    assert unknown.content == existing.content
    assert unknown.json()["message"] == STUDY_VALIDATOR_NOT_FOUND
    assert delete(cast.a.validator.username).status_code == 204
    assert not study.validators.exists()


def test_the_study_page_form_gives_the_same_message_for_unknown_and_refused_users(client, cast):
    study = vt.make_draft_study(cast, cast.a)
    client.force_login(cast.a.admin)
    url = reverse("validation:study", kwargs={"study_id": study.pk})
    pages = [client.post(url, {"action": "add_validator", "username": name}, follow=True)
             for name in ("no-such-person", cast.b.validator.username)]
    for page in pages:
        assert [str(m) for m in page.context["messages"]] == [VALIDATOR_NOT_FOUND]
