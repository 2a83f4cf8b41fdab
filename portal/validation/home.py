"""The validation app's home page panel: studies to score, stain results to enter, studies to run."""
from __future__ import annotations

from django.http import HttpRequest

from portal.validation.selectors import home_validation


def validation_home_panel(request: HttpRequest) -> dict | None:
    """Validators, stain technicians and study administrators: what waits for them (blinded: no model
    output, only counts of their own work)."""
    work = home_validation(request.user)
    if not any(work.values()):
        return None
    return {"template": "validation/_home_panel.html", "order": 30, **work}
