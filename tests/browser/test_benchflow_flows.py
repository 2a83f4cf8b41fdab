"""Browser: travel-ordered pick list, home page per role, a notification when an analysis ends, and the
report's tidy-table zip (issue 16 gaps). Screenshots go to test-artifacts/benchflow/ (docs/screenshots/benchflow/ with UPDATE_SCREENSHOTS=1)."""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from portal.testing.screenshots import screenshot_dir
from tests.browser.review_support import login

pytestmark = [pytest.mark.browser]

CELLS = [(60.0, 60.0, 17.5), (340.0, 60.0, 17.5), (60.0, 240.0, 17.5), (340.0, 240.0, 17.5)]


def _shot(page, name: str) -> None:
    page.screenshot(path=str(screenshot_dir("benchflow") / name), full_page=False)


@pytest.fixture
def cast(transactional_db, settings, tmp_path):
    from portal.testing.cast import build_cast

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_cast()


def _pick_list_of_two_far_fields(cast):
    """Two fields 20 mm apart whose accepted round spermatids alternate between the fields by score."""
    from portal.results.models import Detection
    from portal.review import services
    from portal.testing.review import make_image, make_result_set, make_session

    session = make_session(cast.a, patient_code="CA-TRAVEL1")
    a = make_image(cast.a, session=session, stage=(0.0, 0.0), cells=CELLS)
    b = make_image(cast.a, session=session, stage=(20000.0, 0.0), cells=CELLS)
    a.original_name = "slide7-field-A.tif"
    a.save(update_fields=["original_name"])
    make_result_set(a, cells=CELLS, classes=["round_spermatid"] * 4, scores=[0.99, 0.97, 0.95, 0.93])
    make_result_set(b, cells=CELLS, classes=["round_spermatid"] * 4, scores=[0.98, 0.96, 0.94, 0.92])
    for det in Detection.objects.filter(result_set__image__session=session):
        for reviewer in (cast.a.reviewer, cast.a.reviewer2):
            services.decision_set(user=reviewer, detection=det, verdict="accept")
    return session, services.pick_list_create(user=cast.a.reviewer, session=session)


def test_the_pick_list_is_travel_ordered_says_so_and_links_to_the_viewer_on_the_cell(cast, browser, live_server):
    from portal.testing.cast import PASSWORD

    session, pick_list = _pick_list_of_two_far_fields(cast)
    score_order = [str(i.detection_id) for i in pick_list.items.order_by("rank")]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server.url, cast.a.reviewer.username, PASSWORD)
    page.goto(f"{live_server.url}/review/picklists/{pick_list.pk}/")
    note = page.locator("#pick-order")
    assert note.get_attribute("data-order") == "travel"
    assert "Travel-ordered" in note.inner_text()
    travel = float(page.locator("#pick-travel-mm").inner_text())
    by_score = float(page.locator("#pick-score-travel-mm").inner_text())
    assert travel < by_score / 5
    page_order = [row.get_attribute("data-detection") for row in page.locator("tr.pick-row").all()]
    assert sorted(page_order) == sorted(score_order) and page_order != score_order
    assert page.locator("text=slide7-field-A.tif").count() >= 1  # the clinic's file name, for its own center
    _shot(page, "picklist-travel-ordered.png")
    first = page.locator("tr.pick-row a.pick-viewer").first
    href = first.get_attribute("href")
    first.click()
    page.wait_for_url(re.compile(r"/review/images/.+\?cell=" + page_order[0]))
    assert href.endswith(f"?cell={page_order[0]}")


def test_the_home_page_shows_each_role_what_waits_and_nothing_of_center_2(cast, browser, live_server):
    from portal.testing import validation as vt
    from portal.testing.cast import PASSWORD
    from portal.testing.review import make_reviewable_image

    mine = make_reviewable_image(cast.a, n=6)
    theirs = make_reviewable_image(cast.b, n=6)
    study = vt.make_open_study(cast, cast.a)
    other_study = vt.make_open_study(cast, cast.b)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server.url, cast.a.reviewer.username, PASSWORD)
    page.goto(f"{live_server.url}/")
    row = page.locator(f"#home-review [data-session-id='{mine.session_id}']")
    assert row.count() == 1 and "of 3 cells decided" in row.inner_text()
    html = page.content()
    assert str(theirs.session_id) not in html and theirs.session.patient.code not in html
    _shot(page, "home-reviewer.png")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server.url, cast.a.validator.username, PASSWORD)
    page.goto(f"{live_server.url}/")
    scoring = page.locator(f"#home-validation .home-study-score[data-study-id='{study.pk}']")
    assert scoring.count() == 1 and "cells scored" in scoring.inner_text()
    html = page.content()
    assert other_study.name not in html and 'id="home-review"' not in html
    assert study.model_version.name not in html
    _shot(page, "home-validator.png")


def test_a_notification_appears_when_an_analysis_ends_and_can_be_marked_read(cast, browser, live_server):
    from portal.jobs import services as job_services
    from portal.jobs.models import InferenceJob, JobStatus
    from portal.testing import jobs as jt
    from portal.testing.cast import PASSWORD

    session = jt.make_session(cast.a)
    jt.make_image(session)
    model_version = jt.make_model_version(center=cast.a.center, activate=True)
    job = InferenceJob.objects.create(center=cast.a.center, session=session, model_version=model_version,
                                      images_total=1, images_done=1, status=JobStatus.RUNNING, worker_id="w:1")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server.url, cast.a.reviewer.username, PASSWORD)
    page.goto(f"{live_server.url}/")
    assert page.locator("#nav-unread").count() == 0
    assert page.locator(f"#home-jobs [data-job-id='{job.pk}']").count() == 1  # running, on the home page
    assert job_services._finish_succeeded(job, "w:1")  # the worker ends the job (signal after commit)
    page.reload()
    assert page.locator("#nav-unread").inner_text() == "1"
    notice = page.locator("#home-notifications .notification.unread")
    assert session.patient.code in notice.inner_text() and "finished" in notice.inner_text()
    _shot(page, "home-notification.png")
    notice.locator("button").click()
    page.wait_for_url(re.compile(rf"/imaging/sessions/{session.pk}/"))
    assert page.locator("#nav-unread").count() == 0


def test_the_report_offers_its_tidy_tables_as_a_zip(cast, browser, live_server):
    from portal.testing import validation as vt
    from portal.testing.cast import PASSWORD

    study = vt.make_unblinded_study(cast, cast.a)
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    login(page, live_server.url, cast.a.admin.username, PASSWORD)
    page.goto(f"{live_server.url}/validation/studies/{study.pk}/report/")
    assert page.locator("#sweep-plot polyline").count() >= 1
    page.locator("#threshold-sweep").scroll_into_view_if_needed()
    _shot(page, "report-threshold-sweep.png")
    with page.expect_download() as info:
        page.click("#report-zip")
    data = Path(info.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        study_csv = zf.read("study.csv").decode("utf-8")
    assert {"cells.csv", "scores.csv", "stain_results.csv", "threshold_sweep.csv", "study.csv"} <= names
    assert "timezone,UTC" in study_csv and study.model_output_sha256 in study_csv


def test_the_new_pages_pass_a_basic_accessibility_check(cast, browser, live_server):
    from portal.testing.cast import PASSWORD
    from tests.browser.review_support import A11Y_JS

    session, pick_list = _pick_list_of_two_far_fields(cast)
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    login(page, live_server.url, cast.a.admin.username, PASSWORD)
    problems = {}
    for name, url in {"home": "/", "notifications": "/notifications/",
                      "stage positions": f"/imaging/sessions/{session.pk}/stage/",
                      "pick list": f"/review/picklists/{pick_list.pk}/"}.items():
        page.goto(live_server.url + url)
        found = page.evaluate(A11Y_JS)
        if found:
            problems[name] = found
    assert not problems, problems
    page.goto(f"{live_server.url}/imaging/sessions/{session.pk}/stage/")
    _shot(page, "stage-positions.png")
