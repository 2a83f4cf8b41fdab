"""Browser: live image statuses on the session page, and the API token page's copy button (issue 16)."""
from __future__ import annotations

import pytest

from tests.browser.review_support import login

pytestmark = [pytest.mark.browser]


@pytest.fixture
def cast(transactional_db, settings, tmp_path):
    from portal.testing.cast import build_cast

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_cast()


def test_image_cards_follow_the_analysis_without_a_reload(cast, browser, live_server):
    from portal.imaging.models import ImageStatus
    from portal.jobs.models import InferenceJob, JobImage, JobImageStatus, JobStatus
    from portal.testing import jobs as jt
    from portal.testing.cast import PASSWORD

    session = jt.make_session(cast.a)
    image = jt.make_image(session)
    image.status = ImageStatus.QUEUED
    image.save(update_fields=["status"])
    model_version = jt.make_model_version(center=cast.a.center, activate=True)
    job = InferenceJob.objects.create(center=cast.a.center, session=session, model_version=model_version,
                                      images_total=1, status=JobStatus.RUNNING)
    job_image = JobImage.objects.create(job=job, image=image, status=JobImageStatus.RUNNING)

    page = browser.new_page()
    login(page, live_server.url, cast.a.uploader.username, PASSWORD)
    page.goto(f"{live_server.url}/imaging/sessions/{session.pk}/")
    card = page.locator(f".thumb[data-image-id='{image.pk}'] .image-status")
    page.wait_for_function(
        f"() => document.querySelector(\".thumb[data-image-id='{image.pk}'] .image-status\").textContent"
        " === 'Analyzing'", timeout=10000)
    # the worker finishes: the card follows within a poll, without a reload
    JobImage.objects.filter(pk=job_image.pk).update(status=JobImageStatus.DONE)
    InferenceJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, images_done=1)
    page.wait_for_function(
        f"() => document.querySelector(\".thumb[data-image-id='{image.pk}'] .image-status\").textContent"
        " === 'Analyzed'", timeout=10000)
    assert card.get_attribute("data-status") == "analyzed"


def test_the_new_api_token_is_selected_and_copied_without_csp_errors(cast, browser, live_server):
    from portal.testing.cast import PASSWORD

    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login(page, live_server.url, cast.a.reviewer.username, PASSWORD, second_factor=True)  # the token page asks for it
    page.goto(f"{live_server.url}/accounts/api-token/")
    page.click("button[value=issue]")
    page.wait_for_selector("#new-token")
    key = page.input_value("#new-token")
    page.click("#new-token")
    selected = page.evaluate("() => { const i = document.getElementById('new-token');"
                             " return i.value.substring(i.selectionStart, i.selectionEnd); }")
    assert selected == key
    page.click("#copy-token")
    page.wait_for_selector("#copy-status:has-text('Copied.')")
    assert page.evaluate("() => navigator.clipboard.readText()") == key
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()
