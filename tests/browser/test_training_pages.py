"""Browser: a training job's live progress (polled iteration, ETA, loss plot, cancel), the model card, the
promotion gate side by side, promotion with the e-signature and rollback. Screenshots of the model card
and the gate go to ``docs/screenshots/lifecycle/`` (with ``LIFECYCLE_SCREENSHOTS=1``) or test-artifacts."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from portal.testing.cast import PASSWORD, build_cast
from portal.testing.screenshots import screenshot_dir
from tests.browser.review_support import launch, login

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM lookups between Playwright steps

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = screenshot_dir("lifecycle")


def _world(tmp_path):
    """Center A: a reviewed dataset, its old conservative model, a fine-tuned candidate (in process)."""
    from portal.datasets.services import dataset_version_create, training_use_set
    from portal.mlmodels.services import model_register_bundle
    from portal.testing.jobs import tiny_bundle
    from portal.testing.training import make_session_for, make_synthetic_image, review_image
    from portal.training.services import training_job_create, training_job_run

    cast = build_cast()
    sessions = []
    for k in range(5):
        session = make_session_for(cast.a)
        for j in range(2):
            image, dets, fp = make_synthetic_image(session, seed=500 + 2 * k + j)
            review_image(cast.a, image, dets, fp, mistakes=(k == 0))
        training_use_set(user=cast.a.admin, session=session, consent=True)
        sessions.append(session)
    version = dataset_version_create(user=cast.a.admin, center=cast.a.center, name="clinic", sessions=sessions)
    base = model_register_bundle(path=tiny_bundle(tmp_path / "tiny"), user=None, activate=True)
    old = model_register_bundle(path=tiny_bundle(tmp_path / "old", name="old-conservative", score_thresh=0.8,
                                                 max_detections=3), center=cast.a.center, user=None, activate=True)
    job = training_job_create(user=cast.a.admin, dataset_version=version, base_model=base, options={
        "iterations": 3, "checkpoint_period": 3, "image_scale": 128, "base_lr": 0.00001})
    assert training_job_run(job_id=job.pk, worker_id="browser:1") == "succeeded"
    job.refresh_from_db()
    return cast, version, old, job.candidate


@pytest.mark.browser
@pytest.mark.slow
def test_training_progress_model_card_gate_promotion_and_rollback(live_server, transactional_db, settings, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from portal.jobs.models import JobStatus
    from portal.mlmodels.selectors import model_active_for_center
    from portal.training.models import TrainingJob

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MODEL_STORE_DIR = tmp_path / "media" / "models"
    settings.TRAINING_WORK_DIR = tmp_path / "training"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cast, version, old, candidate = _world(tmp_path)
    running = TrainingJob.objects.create(
        center=cast.a.center, dataset_version=version, status=JobStatus.RUNNING, worker_id="elsewhere:1",
        options={"iterations": 10}, max_iter=10, iteration=3, seconds_per_iter=2.0, eta_seconds=14.0,
        losses=[{"iteration": k, "loss_cls": 1.0 / k, "loss_mask": 0.5 / k} for k in (1, 2, 3)])
    base = live_server.url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors = []
        page.on("console", lambda m: errors.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        login(page, base, cast.a.admin.username, PASSWORD)

        # live progress: polled iteration, ETA and the loss plot follow the job; cancel
        page.goto(f"{base}/training/jobs/{running.pk}/")
        expect(page.locator(".tp-iteration")).to_have_text("3 / 10")
        expect(page.locator(".tp-eta")).to_have_text("14 s")
        assert len(page.locator(".tp-loss").get_attribute("points").split()) == 3
        TrainingJob.objects.filter(pk=running.pk).update(
            iteration=7, eta_seconds=6.0, losses=[{"iteration": k, "loss_cls": 1.0 / k} for k in range(1, 8)])
        expect(page.locator(".tp-iteration")).to_have_text("7 / 10", timeout=10000)
        assert len(page.locator(".tp-loss").get_attribute("points").split()) == 7
        page.click(".tp-cancel button")
        page.wait_for_url(f"**/training/jobs/{running.pk}/")
        assert TrainingJob.objects.get(pk=running.pk).cancel_requested

        # the model card
        page.goto(f"{base}/training/models/{candidate.pk}/card/")
        expect(page.locator(".weights-sha256")).to_have_text(candidate.weights_sha256)
        assert page.locator("section.evaluation").count() == 2  # the test split and center A's held-out images
        assert page.locator("section.evaluation svg.chart").count() == 4  # PR curves and reliability, twice
        expect(page.locator("table.confusion").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "model_card.png"))

        # the gate: side by side, then promotion with the e-signature
        page.goto(f"{base}/training/models/{candidate.pk}/gate/?center={cast.a.center.pk}")
        expect(page.locator(".gate-pass").first).to_be_visible()
        assert page.locator(".side-by-side svg.chart").count() == 4
        page.screenshot(path=str(ARTIFACTS / "gate.png"))
        page.fill(".promote-form input[name=password]", "wrong password")
        page.click(".promote-form button[type=submit]")
        expect(page.locator(".messages .error")).to_be_visible()
        assert model_active_for_center(center=cast.a.center) == old
        page.fill(".promote-form input[name=password]", PASSWORD)
        page.click(".promote-form button[type=submit]")
        page.wait_for_url(f"{base}/training/")
        assert model_active_for_center(center=cast.a.center) == candidate

        # rollback: one click and one signature away
        page.fill("form[action$='/rollback/'] input[name=password]", PASSWORD)
        page.click("form[action$='/rollback/'] button[type=submit]")
        page.wait_for_url(f"{base}/training/")
        assert model_active_for_center(center=cast.a.center) == old
        assert not errors, errors
        browser.close()
