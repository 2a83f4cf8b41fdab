"""Access declarations of the login and logout pages and the personal API-token page."""
from tests.access_matrix import GET, POST, Route, statuses

ROUTES = [
    # Logged-in users are sent on (redirect_authenticated_user).
    Route(name="accounts:login", per_center=False, checks=[GET(own=statuses(302, anonymous=200))]),
    Route(name="accounts:logout", per_center=False, checks=[POST(own=statuses(302, anonymous=302))]),
    # every signed-in user manages their own token only (no object in the URL)
    Route(name="accounts:api-token", per_center=False,
          checks=[GET(own=statuses(200, anonymous=302)),
                  POST(payload=lambda o: {"action": "revoke"}, fmt="multipart", own=statuses(302, anonymous=302))]),
]
