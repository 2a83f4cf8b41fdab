"""Browser: an uploader drops files on the upload page's drop zone; each file is stored or refused on its own."""
from __future__ import annotations

import base64
import os

import pytest

from portal.imaging.models import Image
from portal.testing.cast import PASSWORD, build_cast
from portal.testing.imaging import make_session, png_upload

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM lookups between Playwright steps

DROP_FILES = """
([pngBase64]) => {
  const bytes = Uint8Array.from(atob(pngBase64), c => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], "field.png", {type: "image/png"}));
  transfer.items.add(new File(["not an image"], "notes.txt", {type: "text/plain"}));
  const zone = document.getElementById("dropzone");
  zone.dispatchEvent(new DragEvent("dragenter", {dataTransfer: transfer, bubbles: true, cancelable: true}));
  zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true, cancelable: true}));
  const highlighted = zone.classList.contains("over");
  zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
  return {highlighted, after: zone.classList.contains("over")};
}
"""


@pytest.mark.browser
def test_uploader_drops_files_on_the_drop_zone(live_server, transactional_db, settings, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    settings.MEDIA_ROOT = tmp_path / "media"
    cast = build_cast()
    session = make_session(cast.a)
    png = base64.b64encode(png_upload(seed=3).read()).decode()
    base = live_server.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", cast.a.uploader.username)
        page.fill("#id_password", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/imaging/sessions/{session.pk}/upload/")
        state = page.evaluate(DROP_FILES, [png])
        assert state == {"highlighted": True, "after": False}  # the zone lights up while dragging over it
        expect(page.locator("#upload-status")).to_have_text("2 files ready to upload.")  # ngettext plural
        page.click("#upload-button")
        expect(page.locator("#upload-results li.ok")).to_have_count(1)
        expect(page.locator("#upload-results li.ok")).to_contain_text("40×32")
        expect(page.locator("#upload-results li.refused")).to_have_count(1)
        expect(page.locator("#upload-results li.refused")).to_contain_text("notes.txt")
        browser.close()
    assert errors == []
    assert Image.objects.filter(session=session).count() == 1
