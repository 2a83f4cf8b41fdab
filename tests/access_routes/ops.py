"""Access declarations of the operations routes: readiness (open) and Prometheus metrics (token or
superuser)."""
from tests.access_matrix import GET, Route, statuses

ROUTES = [
    Route(name="ops:readyz", per_center=False, note="readiness: no login; names failed checks, never why",
          checks=[GET(own=statuses(200, anonymous=200))]),
    Route(name="ops:metrics", per_center=False, note="metrics: METRICS_TOKEN bearer or a superuser",
          checks=[GET(own=statuses(403, anonymous=401, superuser=200))]),
]
