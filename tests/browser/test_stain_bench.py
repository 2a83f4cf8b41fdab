"""Browser: the stain technician's bench. A fluorescence image is uploaded and registered by two points
over the brightfield, its opacity changes what the canvas shows, keyboard calls land on the right cells
(checked in the database), and a CSV import with a bad row saves nothing before a good file saves all."""
from __future__ import annotations

import pytest

from portal.testing.screenshots import screenshot_dir
from tests.browser.review_support import launch, login

pytestmark = [pytest.mark.browser]
# test-artifacts/stain on every run; docs/screenshots/stain with UPDATE_SCREENSHOTS=1
SCREENSHOTS = screenshot_dir("stain")
SHIFT = (10.0, -6.0)  # where the fluorescence camera's image lies on the field, in field px


@pytest.fixture
def open_study(transactional_db, settings, tmp_path):
    from portal.testing import validation as vt
    from portal.testing.cast import build_cast

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cast = build_cast()
    study = vt.make_open_study(cast, cast.a, validators=("validator",), validators_per_cell=1)
    return cast, study


@pytest.fixture
def page(open_study, live_server):
    from playwright.sync_api import sync_playwright

    from portal.testing.cast import PASSWORD

    cast, study = open_study
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, live_server.url, cast.a.stain.username, PASSWORD)
        page.goto(f"{live_server.url}/validation/studies/{study.pk}/stain/")
        page.wait_for_selector("body[data-stain-ready='1']", timeout=20000)
        yield page
        browser.close()


def _screenshot(target, name: str) -> None:
    """A screenshot for the docs (docs/screenshots/stain), reduced to a 96-colour PNG (under 300 KB)."""
    from PIL import Image as PILImage

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    target.screenshot(path=str(path))
    with PILImage.open(path) as image:
        small = image.convert("RGB").quantize(96)
    small.save(path, optimize=True)


def _idle(page):
    page.wait_for_function("() => document.body.getAttribute('data-pending') === '0'", timeout=20000)


def _click_image_point(page, selector: str, x_px: float, y_px: float) -> None:
    """Click the canvas at image pixel (x_px, y_px) (the canvas says its scale in data-view)."""
    box = page.evaluate(
        "(s) => { const c = document.querySelector(s); const r = c.getBoundingClientRect();"
        " return {k: Number(c.dataset.view) * r.width / c.width}; }", selector)
    page.click(selector, position={"x": x_px * box["k"], "y": y_px * box["k"]})


def _field_pixel(page, x_px: float, y_px: float) -> list[int]:
    return page.evaluate(
        "([x, y]) => { const c = document.getElementById('field-canvas'); const v = Number(c.dataset.view);"
        " return Array.from(c.getContext('2d').getImageData(Math.round(x * v), Math.round(y * v), 1, 1).data); }",
        [x_px, y_px])


def _set_opacity(page, channel: str, percent: int) -> None:
    page.evaluate(
        "([channel, value]) => { const input = document.getElementById('opacity-' + channel);"
        " input.value = String(value); input.dispatchEvent(new Event('input')); }", [channel, percent])
    _idle(page)


def _page_cells(page) -> list[str]:
    return page.eval_on_selector_all("#cell-list tbody tr", "rows => rows.map(r => r.dataset.cell)")


def _results(study) -> dict[str, tuple[str, str]]:
    from portal.validation.models import StainResult

    return {r.cell.public_id: (r.prm1, r.pna) for r in StainResult.objects.filter(cell__study=study)
            .select_related("cell")}


def test_upload_register_by_two_points_overlay_and_keyboard_calls(open_study, page):
    from portal.testing import staining
    from portal.validation.models import StainImage

    cast, study = open_study
    # upload the PRM1 image of the field
    page.select_option("#upload-channel", "prm1")
    page.set_input_files("#upload-file", files=[{"name": "field-prm1.png", "mimeType": "image/png",
                                                 "buffer": staining.fluorescence_png(shift=SHIFT)}])
    page.click("#upload-form button[type=submit]")
    _idle(page)
    assert "not registered" in page.inner_text("#stain-image-list tr[data-channel='prm1']")
    stain_image = StainImage.objects.get(study=study, channel="prm1")

    # manual two-point registration: the same two cells on the fluorescence image and on the field
    page.click("#stain-image-list tr[data-channel='prm1'] >> text=Register by two points")
    _idle(page)
    stain_points = [(40.0 - SHIFT[0], 40.0 - SHIFT[1]), (340.0 - SHIFT[0], 280.0 - SHIFT[1])]
    field_points = [(40.0, 40.0), (340.0, 280.0)]
    for stain_point, field_point in zip(stain_points, field_points, strict=True):
        _click_image_point(page, "#stain-canvas", *stain_point)
        _idle(page)
        _click_image_point(page, "#field-canvas", *field_point)
        _idle(page)
    _screenshot(page.locator("#register-panel"), "registration-two-points.png")
    page.click("#register-save")
    _idle(page)
    stain_image.refresh_from_db()
    assert stain_image.registration_method == "manual"
    assert stain_image.scale == pytest.approx(1.0, abs=0.01)
    assert abs(stain_image.rotation_rad) < 0.01
    assert stain_image.offset_x_px == pytest.approx(SHIFT[0], abs=1.0)
    assert stain_image.offset_y_px == pytest.approx(SHIFT[1], abs=1.0)
    assert "two points" in page.inner_text("#stain-image-list tr[data-channel='prm1'] .registration")

    # the overlay's opacity: a PRM1-positive cell turns green, and back to grey at 0 %
    cell_centre = (100.0, 120.0)
    _set_opacity(page, "prm1", 100)
    red, green, blue, _ = _field_pixel(page, *cell_centre)
    assert green - red > 80 and green - blue > 80
    _set_opacity(page, "prm1", 0)
    red, green, blue, _ = _field_pixel(page, *cell_centre)
    assert abs(green - red) < 12 and abs(green - blue) < 12
    _set_opacity(page, "prm1", 70)

    # keyboard calls, typed fast: each cell done after its two answers; "n" skips on
    order = _page_cells(page)
    assert len(order) >= 4
    for key in ("1", "4", "2", "5", "3", "n", "1", "6"):
        page.keyboard.press(key, delay=0)
    _idle(page)
    results = _results(study)
    assert results[order[0]] == ("pos", "pos")
    assert results[order[1]] == ("neg", "neg")
    assert results[order[2]] == ("na", "")
    assert results[order[3]] == ("pos", "na")
    assert len(results) == 4
    assert page.inner_text("#cell-pos").startswith("5 /")
    assert page.inner_text("#progress-text").startswith("3 of ")
    page.evaluate("window.scrollTo(0, 0)")
    _screenshot(page, "bench-overlay-keyboard.png")


def test_csv_import_with_a_bad_row_saves_nothing_then_a_good_file_saves_every_row(open_study, page):
    cast, study = open_study
    order = _page_cells(page)
    bad = f"cell,prm1,pna\n{order[0]},pos,neg\n{order[1]},maybe,pos\nffffffffffffffff,pos,pos\n"
    page.set_input_files("#import-file", files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": bad.encode()}])
    page.click("#import-form button[type=submit]")
    _idle(page)
    assert "nothing was saved" in page.inner_text("#import-status")
    errors = page.inner_text("#import-table")
    assert "'maybe'" in errors and "No cell ffffffffffffffff" in errors
    assert page.is_disabled("#import-confirm")
    assert _results(study) == {}
    _screenshot(page.locator(".stain-import"), "csv-import-errors.png")

    good = f"cell,prm1,pna\n{order[0]},pos,neg\n{order[1]},na,pos\n"
    page.set_input_files("#import-file", files=[{"name": "good.csv", "mimeType": "text/csv", "buffer": good.encode()}])
    page.click("#import-form button[type=submit]")
    _idle(page)
    assert "2 row(s) checked" in page.inner_text("#import-status")
    assert _results(study) == {}
    page.click("#import-confirm")
    _idle(page)
    assert "2 result(s) saved" in page.inner_text("#import-status")
    assert _results(study) == {order[0]: ("pos", "neg"), order[1]: ("na", "pos")}
    assert page.inner_text("#progress-text").startswith("2 of ")


def test_every_cell_called_by_keyboard(open_study, page, capsys):
    """Prints the time to call every cell (PRM1 and PNA, two keys each) for the issue's timing figure."""
    import time

    cast, study = open_study
    order = _page_cells(page)
    start = time.perf_counter()
    for _ in order:
        for key in ("1", "5"):
            page.keyboard.press(key)
    _idle(page)
    elapsed = time.perf_counter() - start
    assert _results(study) == {cell: ("pos", "neg") for cell in order}
    assert page.inner_text("#progress-text").startswith(f"{len(order)} of {len(order)}")
    with capsys.disabled():
        print(f"\n{len(order)} cells called by keyboard ({2 * len(order)} keys): {elapsed:.2f} s")
