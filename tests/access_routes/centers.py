"""Access declarations for the centers API (see tests/access_matrix.py)."""
from tests.access_matrix import GET, Route, statuses

ROUTES = [
    # Everyone authenticated lists their own centers (an auditor: none).
    Route(name="api-center-list", build=lambda cast, cc: cc.center, list_ids=lambda c: [c.pk],
          checks=[GET(own=statuses(200, anonymous=401))]),
    Route(name="api-center-detail", build=lambda cast, cc: cc.center, kwargs=lambda c: {"pk": c.pk},
          checks=[GET(own=statuses(200, auditor=404, anonymous=401))]),
]
