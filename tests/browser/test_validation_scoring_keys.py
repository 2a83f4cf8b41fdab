"""Browser: the validator's scoring page answers the cell on screen, in key order, with no key lost."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.browser.review_support import launch, login

pytestmark = [pytest.mark.browser]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "validation"


@pytest.fixture
def open_study(transactional_db, settings, tmp_path):
    from portal.testing import validation as vt
    from portal.testing.cast import build_cast

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cast = build_cast()
    picks = vt.PLANTED_PICKS + [(x, 260) for x in range(40, 400, 60)]  # 10 model picks + 10 picks = 20 cells
    study = vt.make_open_study(cast, cast.a, validators=("validator",), validators_per_cell=1, picks=picks)
    return cast, study


@pytest.fixture
def page(open_study, live_server):
    from playwright.sync_api import sync_playwright

    from portal.testing.cast import PASSWORD

    cast, study = open_study
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, live_server.url, cast.a.validator.username, PASSWORD)
        page.goto(f"{live_server.url}/validation/studies/{study.pk}/score/")
        page.wait_for_function("() => document.getElementById('cell-id').textContent !== ''")
        yield page
        browser.close()


def _idle(page):
    page.wait_for_function("() => document.body.getAttribute('data-pending') === '0'", timeout=15000)


def _rows(study, validator):
    from portal.validation.models import Assignment

    return list(Assignment.objects.filter(validator__study=study, validator__user=validator)
                .order_by("position").values_list("morphology", "prm1", "pna"))


def test_stain_keys_after_morphology_land_on_the_same_cell(open_study, page):
    cast, study = open_study
    page.keyboard.press("y")
    page.keyboard.press("1")
    page.keyboard.press("4")
    _idle(page)
    rows = _rows(study, cast.a.validator)
    assert rows[0] == ("yes", "pos", "pos")
    assert rows[1] == ("", "", "")
    # the last answer moved the page on to the second cell
    assert page.inner_text("#cell-pos").startswith("2 /")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "scoring-next-cell.png"))


def test_quick_keys_while_saving_are_all_kept_in_order(open_study, page):
    cast, study = open_study
    for key in ("n", "2", "5", "n", "2", "5", "n", "2", "5"):
        page.keyboard.press(key, delay=0)
    _idle(page)
    rows = _rows(study, cast.a.validator)
    assert rows[:3] == [("no", "neg", "neg")] * 3
    assert rows[3] == ("", "", "")
    assert page.inner_text("#progress-text").startswith("3 of ")


def test_twenty_cells_scored_by_keyboard(open_study, page, capsys):
    """Prints the time to score 20 cells (three keys each) for the issue's timing figure."""
    cast, study = open_study
    n = len(_rows(study, cast.a.validator))
    start = time.perf_counter()
    for _ in range(20):
        for key in ("y", "1", "4"):
            page.keyboard.press(key)
    _idle(page)
    elapsed = time.perf_counter() - start
    rows = _rows(study, cast.a.validator)
    assert n == 20
    assert rows == [("yes", "pos", "pos")] * 20
    with capsys.disabled():
        print(f"\n20 cells scored by keyboard (60 keys): {elapsed:.2f} s")
