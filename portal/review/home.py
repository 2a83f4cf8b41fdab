"""The review app's home page panel: sessions waiting for review, with progress."""
from __future__ import annotations

from django.http import HttpRequest

from portal.centers.access import center_ids_for
from portal.centers.policy import Action
from portal.review import selectors


def review_home_panel(request: HttpRequest) -> dict | None:
    """For users who decide reviews: the sessions with undecided cells to review (at their threshold)."""
    if not center_ids_for(request.user, Action.REVIEW_DECIDE):
        return None
    threshold = selectors.review_threshold_get(request.session)
    rows = selectors.sessions_to_review(user=request.user, threshold=threshold)
    return {"template": "review/_home_panel.html", "order": 10, "sessions_to_review": rows, "threshold": threshold}
