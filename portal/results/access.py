"""Access to model output: ``access_result_set(*, user, id, action)`` and the result sets of an image
(``access_image`` with ``results.read``). Center, role and blinding are checked together by
``portal.imaging.access.session_gate``; absent, another center's and blinded all raise ``NotFound``."""
from __future__ import annotations

from portal.centers.policy import Action
from portal.imaging.access import access_in_session
from portal.results.models import ResultSet


def access_result_set(*, user, id, action: Action = Action.RESULTS_READ) -> ResultSet:
    """One result set ``user`` may do ``action`` on."""
    return access_in_session(ResultSet.objects.select_related("image", "model_version"), user=user, id=id,
                             action=action, kind="results.resultset", session_of=lambda rs: rs.image.session_id)
