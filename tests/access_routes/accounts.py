"""Access declarations of the login and logout pages, two-factor pages, password pages and the
personal API-token page (none of them shows center data: per_center=False)."""
from tests.access_matrix import GET, POST, Route, statuses

ROUTES = [
    # Logged-in users are sent on (redirect_authenticated_user).
    Route(name="accounts:login", per_center=False, checks=[GET(own=statuses(302, anonymous=200))]),
    Route(name="accounts:logout", per_center=False, checks=[POST(own=statuses(302, anonymous=302))]),
    # the language switcher: the user's own setting (and the cookie), open before login too
    Route(name="accounts:language", per_center=False,
          checks=[POST(payload=lambda o: {"language": "zh-hans"}, fmt="multipart",
                       own=statuses(302, anonymous=302))]),
    # Matrix logins are already verified by a second factor: both pages send the user on.
    Route(name="accounts:otp-verify", per_center=False, checks=[GET(own=statuses(302, anonymous=302))]),
    Route(name="accounts:otp-enrol", per_center=False, checks=[GET(own=statuses(302, anonymous=302))]),
    # every signed-in user manages their own token only (no object in the URL)
    Route(name="accounts:api-token", per_center=False,
          checks=[GET(own=statuses(200, anonymous=302)),
                  POST(payload=lambda o: {"action": "revoke"}, fmt="multipart", own=statuses(302, anonymous=302))]),
    # own password only (no object in the URL)
    Route(name="accounts:password-change", per_center=False, checks=[GET(own=statuses(200, anonymous=302))]),
    Route(name="accounts:password-change-done", per_center=False, checks=[GET(own=statuses(200, anonymous=302))]),
    # password reset by e-mail: open to everyone, the link in the mail is the credential
    Route(name="accounts:password-reset", per_center=False, checks=[GET(own=statuses(200, anonymous=200))]),
    Route(name="accounts:password-reset-done", per_center=False, checks=[GET(own=statuses(200, anonymous=200))]),
    Route(name="accounts:password-reset-confirm", per_center=False,
          url="/accounts/password/reset/MQ/invalid-token/",
          checks=[GET(own=statuses(200, anonymous=200))],
          note="an invalid link shows 'not valid'; valid links: portal/accounts/tests/test_password_pages.py"),
    Route(name="accounts:password-reset-complete", per_center=False,
          checks=[GET(own=statuses(200, anonymous=200))]),
]
