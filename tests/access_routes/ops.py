"""Access declarations of the operations routes: readiness (open) and Prometheus metrics (token or
superuser)."""
from portal.centers.rls import rls_active
from tests.access_matrix import GET, Route, statuses

# Under row-level security (PostgreSQL) the test run logs in as the tables' owner (a superuser), which
# /readyz's database role check rightly refuses (portal/ops/tests/test_health.py logs in as the app
# role): unready there, to everyone.
READY = 503 if rls_active() else 200

ROUTES = [
    Route(name="ops:readyz", per_center=False, note="readiness: no login; names failed checks, never why",
          checks=[GET(own=statuses(READY, anonymous=READY))]),
    Route(name="ops:metrics", per_center=False, note="metrics: METRICS_TOKEN bearer or a superuser",
          checks=[GET(own=statuses(403, anonymous=401, superuser=200))]),
]
