"""Access declarations of the project-level routes: home, health, current user, API schema/docs, JavaScript catalog,
admin."""
from tests.access_matrix import GET, POST, Route, statuses


def _notification(cast, cc):
    """An unread notification of the center's reviewer (only that user may reach it)."""
    from portal.core.models import NotificationKind
    from portal.core.services import notifications_create

    (note,) = notifications_create(user_ids=[cc.reviewer.pk], kind=NotificationKind.ANALYSIS_SUCCEEDED,
                                   params={"session": "X", "images_done": 1, "images_total": 1},
                                   center_id=cc.center.pk)
    return {"notification": note}


ROUTES = [
    Route(name="core:home", per_center=False, checks=[GET(own=statuses(200, anonymous=302))]),
    Route(name="core:notifications", per_center=False, checks=[GET(own=statuses(200, anonymous=302))]),
    Route(name="core:notifications-read-all", per_center=False,
          checks=[POST(own=statuses(302, anonymous=302), fmt="multipart", payload=lambda o: {})]),
    Route(name="core:notification-read", build=_notification,
          kwargs=lambda o: {"notification_id": o["notification"].pk},
          note="a notification is its recipient's only: everyone else gets 404",
          checks=[POST(own=statuses(404, reviewer=302, anonymous=302), fmt="multipart", payload=lambda o: {})]),
    Route(name="core:healthz", per_center=False, note="liveness: no login, no database",
          checks=[GET(own=statuses(200, anonymous=200))]),
    Route(name="api-me", per_center=False, checks=[GET(own=statuses(200, anonymous=401))]),
    Route(name="api-schema", per_center=False, note="OpenAPI schema: signed-in users and tokens only",
          checks=[GET(own=statuses(200, anonymous=401))]),
    Route(name="api-docs", per_center=False, note="Swagger UI page: signed-in users only",
          checks=[GET(own=statuses(200, anonymous=302))]),
    Route(name="javascript-catalog", per_center=False, note="translations of the page scripts: public text only",
          checks=[GET(own=statuses(200, anonymous=200))]),
    Route(name="admin:*", url="/admin/", per_center=False,
          note="Django admin: staff only; every admin route is covered by this glob",
          checks=[GET(own=statuses(302, anonymous=302, superuser=200))]),
]
