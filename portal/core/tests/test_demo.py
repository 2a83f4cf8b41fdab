"""``seed_demo`` builds what the README promises: logins per role and a validation study with cells to score."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_seed_demo_creates_an_open_validation_study_for_the_demo_validators(settings, tmp_path):
    from portal.validation import selectors
    from portal.validation.models import Study, StudyStatus

    settings.VAR_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()

    study = Study.objects.get(name="Demo validation study")
    assert study.status == StudyStatus.OPEN
    assert study.cells.count() > 0
    members = {v.user.username: v.assignments.count() for v in study.validators.select_related("user")}
    assert set(members) == {"validator", "validator2"} and all(members.values())
    from django.contrib.auth import get_user_model

    stain = get_user_model().objects.get(username="stain_tech")
    assert study in selectors.study_list_for_stain(stain)
    assert "cells to score by validator and validator2" in text
    for username in ("reviewer", "validator", "stain_tech", "auditor"):
        assert f"  {username} " in text  # the printed logins name the users the README sends people to

    again = io.StringIO()
    call_command("seed_demo", stdout=again)
    assert "Demo validation study: already there." in again.getvalue()
    assert Study.objects.filter(name="Demo validation study").count() == 1
