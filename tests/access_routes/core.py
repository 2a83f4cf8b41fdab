"""Access declarations of the project-level routes: home, health, current user, API schema/docs, JavaScript catalog, admin."""
from tests.access_matrix import GET, Route, statuses

ROUTES = [
    Route(name="core:home", per_center=False, checks=[GET(own=statuses(200, anonymous=302))]),
    Route(name="core:healthz", per_center=False, checks=[GET(own=statuses(200, anonymous=200))]),
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
