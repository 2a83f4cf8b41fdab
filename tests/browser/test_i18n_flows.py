"""Browser: the reviewer and validator flows in Simplified Chinese (Accept-Language zh-CN), the nav's
language switcher, the JavaScript catalog; screenshots under test-artifacts/i18n/ (docs/screenshots/i18n/ with UPDATE_SCREENSHOTS=1).

The viewer, scoring and stain pages get their own strings translated after the merge (second pass), so
these tests assert on what this branch controls: the nav, page titles and headings, and window.gettext.
"""
from __future__ import annotations

import os

import pytest

from portal.testing import validation as vt
from portal.testing.cast import PASSWORD
from portal.testing.screenshots import screenshot_dir
from tests.browser.review_support import build_world, launch, login

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM lookups between Playwright steps



def _shot(page, name: str) -> None:
    page.screenshot(path=str(screenshot_dir("i18n") / name), full_page=False)


def _chinese_page(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 760})
    page = context.new_page()
    errors: list[str] = []
    # script errors, and failed requests other than the browser's own favicon probe
    page.on("console", lambda m: errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    return context, page, errors


def _nav(page) -> str:
    return page.locator("header.topbar nav").inner_text()


@pytest.mark.browser
def test_the_reviewer_flow_in_chinese(live_server, transactional_db, settings, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cast, session, images, _dets = build_world()
    base = live_server.url
    with sync_playwright() as p:
        browser = launch(p)
        context, page, errors = _chinese_page(browser)
        page.goto(f"{base}/accounts/login/")
        expect(page.locator("h1")).to_have_text("登录")
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        _shot(page, "login-zh.png")
        login(page, base, cast.a.reviewer.username, PASSWORD)

        page.goto(f"{base}/review/")
        expect(page.locator("main h1")).to_have_text("待审核批次")
        assert "审核" in _nav(page) and "首页" in _nav(page)
        assert page.title().startswith("审核批次")
        _shot(page, "review-sessions-zh.png")

        page.goto(f"{base}/review/sessions/{session.pk}/")
        expect(page.locator("main")).to_contain_text("关于此批次")
        expect(page.locator("main")).to_contain_text("生成已接受的圆形精子细胞挑选清单")
        _shot(page, "review-session-zh.png")

        page.goto(f"{base}/review/images/{images[0].pk}/")
        page.wait_for_selector("body[data-viewer-ready='1']", timeout=20000)
        assert page.evaluate("window.gettext('Cancel')") == "取消"  # the djangojs catalog is loaded
        assert page.evaluate("interpolate(gettext('Image %(field)s'), {field: 3}, true)") == "图像 3"
        assert "审核" in _nav(page)
        _shot(page, "review-viewer-zh.png")

        # the switcher: English now, remembered on the account, then back to Chinese
        page.goto(f"{base}/review/")
        page.select_option("#language-select", "en")
        page.click("#language-switcher button[type=submit]")
        expect(page.locator("main h1")).to_have_text("Sessions to review")
        cast.a.reviewer.refresh_from_db()
        assert cast.a.reviewer.language == "en"
        page.select_option("#language-select", "zh-hans")
        page.click("#language-switcher button[type=submit]")
        expect(page.locator("main h1")).to_have_text("待审核批次")
        assert not errors, errors
        context.close()
        browser.close()


@pytest.mark.browser
def test_the_validator_flow_in_chinese(live_server, transactional_db, settings, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from portal.testing.cast import build_cast

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cast = build_cast()
    study = vt.make_open_study(cast, cast.a)
    base = live_server.url
    with sync_playwright() as p:
        browser = launch(p)
        context, page, errors = _chinese_page(browser)
        login(page, base, cast.a.validator.username, PASSWORD)  # with the code step (validators need 2FA)

        page.goto(f"{base}/validation/")
        expect(page.locator("main h1")).to_have_text("验证研究")
        expect(page.locator("main")).to_contain_text("您参与验证的研究")
        assert "验证" in _nav(page)
        _shot(page, "validation-index-zh.png")

        page.goto(f"{base}/validation/studies/{study.pk}/score/")
        assert page.evaluate("document.documentElement.lang") == "zh-hans"
        assert page.evaluate("window.gettext('Request failed (%(status)s)')") == "请求失败（%(status)s）"
        assert "验证" in _nav(page)
        _shot(page, "validation-score-zh.png")

        page.goto(f"{base}/validation/studies/{study.pk}/sign/")
        expect(page.locator("main h1")).to_contain_text("签署：")
        expect(page.locator("main")).to_contain_text("请重新输入密码")
        _shot(page, "validation-sign-zh.png")

        # the study administrator's page: status, actions and the PDF report link
        page.context.clear_cookies()
        login(page, base, cast.a.admin.username, PASSWORD)
        page.goto(f"{base}/validation/studies/{study.pk}/")
        expect(page.locator("main h1 .badge")).to_have_text("开放评分")
        expect(page.locator("#lock-study")).to_have_text("锁定研究…")
        _shot(page, "validation-study-admin-zh.png")
        assert not errors, errors
        context.close()
        browser.close()
