"""Access declarations for the auditor's pages (see tests/access_matrix.py).

Only site auditors and superusers; every center's events are shown to them by design.
"""
from tests.access_matrix import GET, Route, statuses

AUDITORS_ONLY = statuses(403, auditor=200, superuser=200, anonymous=302)

ROUTES = [
    Route(name="audit:event-list", per_center=False, checks=[GET(own=AUDITORS_ONLY)]),
    Route(name="audit:event-export", per_center=False, checks=[GET(own=AUDITORS_ONLY)]),
]
