"""Browser: the validator's scoring page shows the whole field with a marker on the cell being scored and a
scale bar, zoomable, and nothing of the model (no class, score or overlay request)."""
from __future__ import annotations

import pytest

from portal.testing.screenshots import screenshot_dir
from tests.browser.review_support import launch, login

pytestmark = [pytest.mark.browser]
DOCS = screenshot_dir("review")  # small PNGs, copied to docs/screenshots/review with UPDATE_SCREENSHOTS=1
CLASS_WORDS = ["round spermatid", "round_spermatid", "spermatocyte", "elongated", "spermatozoon", "erythrocyte",
               "leukocyte", "model"]


@pytest.fixture
def open_study(transactional_db, settings, tmp_path):
    from portal.testing import validation as vt
    from portal.testing.cast import build_cast

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cast = build_cast()
    study = vt.make_open_study(cast, cast.a, validators=("validator",), validators_per_cell=1)
    return cast, study


def test_validator_sees_the_field_with_a_marker_and_no_model_output(open_study, live_server):
    from playwright.sync_api import sync_playwright

    from portal.testing.cast import PASSWORD
    from portal.validation.models import Assignment

    cast, study = open_study
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        login(page, live_server.url, cast.a.validator.username, PASSWORD)
        page.goto(f"{live_server.url}/validation/studies/{study.pk}/score/")
        page.wait_for_selector("#field-canvas[data-field-ready='1']", timeout=20000)

        first = Assignment.objects.filter(validator__user=cast.a.validator, validator__study=study).order_by(
            "position").first().cell
        assert page.get_attribute("#field-canvas", "data-cell") == first.public_id
        assert page.inner_text("#field-scale").endswith("µm")
        # the marker sits where the cell is: image pixel -> screen through the view's transform
        v = page.evaluate("() => { const s = window.fieldView.state; return [s.scale, s.tx, s.ty]; }")
        mx, my = (int(t) for t in page.get_attribute("#field-canvas", "data-marker").split(","))
        assert abs(mx - (round(first.x_px) * v[0] + v[1])) <= 1 and abs(my - (round(first.y_px) * v[0] + v[2])) <= 1
        DOCS.mkdir(parents=True, exist_ok=True)
        page.locator(".field-view").screenshot(path=str(DOCS / "validator-field-view.png"))

        # zoom with the keyboard and to the cell
        s0 = page.evaluate("() => window.fieldView.state.scale")
        page.keyboard.press("+")
        assert page.evaluate("() => window.fieldView.state.scale") > s0
        page.click("#field-cell")
        assert page.evaluate("() => window.fieldView.state.scale") > s0 * 1.2

        # the next cell moves the marker (same field: the image is fetched once)
        page.keyboard.press("j")
        page.wait_for_function(f"() => document.getElementById('field-canvas').getAttribute('data-cell') !== '{first.public_id}'"
                               " && document.getElementById('field-canvas').getAttribute('data-field-ready') === '1'")

        text = page.inner_text("body").lower()
        for word in CLASS_WORDS:
            assert word not in text, word
        from portal.results.models import Detection

        for d in Detection.objects.filter(result_set__image__session__in=study.sessions.all()):
            assert f"{d.score:.3f}" not in text and str(d.pk) not in text
        assert not [u for u in requests if "/review/" in u or "/result-sets/" in u or "/detections/" in u]
        assert any("/fields/" in u and u.endswith("/image.png") for u in requests)
        assert any(u.endswith("/context/") for u in requests)
        browser.close()
