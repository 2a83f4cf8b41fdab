"""The portal's language: Accept-Language by default, a switcher in the nav, remembered on the account."""
from __future__ import annotations

from django.conf import settings
from django.test import Client

from portal.testing.cast import PASSWORD, login_verified

LOGIN = "/accounts/login/"
SWITCH = "/accounts/language/"


def test_accept_language_chooses_chinese_when_the_user_chose_nothing(client, db):
    page = client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.5").content.decode()
    assert '<html lang="zh-hans">' in page and "登录" in page
    english = Client().get(LOGIN, HTTP_ACCEPT_LANGUAGE="en-GB").content.decode()
    assert '<html lang="en">' in english and "Log in" in english and "登录" not in english


def test_the_switcher_is_in_every_page_and_posts_with_csrf(client, cast):
    login_verified(client, cast.a.uploader)
    page = client.get("/").content.decode()
    assert f'action="{SWITCH}"' in page and 'name="csrfmiddlewaretoken"' in page.split('id="language-switcher"')[1]
    strict = Client(enforce_csrf_checks=True)
    login_verified(strict, cast.a.uploader)
    assert strict.post(SWITCH, {"language": "zh-hans"}).status_code == 403


def test_the_switcher_remembers_the_choice_on_the_account(client, cast):
    user = cast.a.reviewer
    login_verified(client, user)
    response = client.post(SWITCH, {"language": "zh-hans", "next": "/review/"})
    assert response.status_code == 302 and response["Location"] == "/review/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    user.refresh_from_db()
    assert user.language == "zh-hans"
    # another browser, English Accept-Language, no cookie: the account's choice wins after login
    elsewhere = Client()
    login_verified(elsewhere, user)
    page = elsewhere.get("/review/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "待审核批次" in page and "Sessions to review" not in page


def test_the_switcher_before_login_sets_only_the_cookie(client, db):
    response = client.post(SWITCH, {"language": "zh-hans", "next": LOGIN})
    assert response.status_code == 302 and response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    assert "登录" in client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_the_switcher_refuses_an_unknown_language_and_an_outside_next(client, cast):
    user = cast.a.uploader
    login_verified(client, user)
    assert client.post(SWITCH, {"language": "xx"}).status_code == 400
    user.refresh_from_db()
    assert user.language == ""
    response = client.post(SWITCH, {"language": "en", "next": "https://elsewhere.example/"})
    assert response["Location"] == "/"


def test_api_messages_follow_the_language_and_keys_stay_english(client, cast):
    user = cast.a.uploader
    login_verified(client, user)
    missing = client.get("/api/v1/no-such-endpoint/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert missing.status_code == 404 and missing.json() == {"message": "未找到。", "extra": {}}
    bad = client.post("/api/v1/patients/", {"center": "not-a-uuid"}, content_type="application/json",
                      HTTP_ACCEPT_LANGUAGE="zh-hans")
    body = bad.json()
    assert bad.status_code == 400 and set(body) == {"message", "extra"}
    assert body["message"] == "输入无效。" and "center" in body["extra"]["fields"]
    english = client.post("/api/v1/patients/", {"center": "not-a-uuid"}, content_type="application/json",
                          HTTP_ACCEPT_LANGUAGE="en")
    assert english.json()["message"] == "Invalid input." and set(english.json()["extra"]) == set(body["extra"])


def test_the_password_reset_mail_is_in_the_requests_language(client, cast):
    from django.core import mail

    user = cast.a.uploader
    user.email = "uploader@example.org"
    user.set_password(PASSWORD)
    user.save()
    client.post("/accounts/password/reset/", {"email": user.email}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "spermatid-portal：设置新密码"
    assert "有人（希望是您本人）申请重置" in mail.outbox[0].body


def test_a_requests_language_does_not_outlive_the_request(client, db):
    from django.utils.translation import get_language, gettext

    client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert get_language() == "en" and gettext("Not found.") == "Not found."
