"""Access to model output: ``access_result_set(*, user, id, action)`` and the result sets of an image
(``access_image`` with ``results.read``). Center, role and blinding are checked together by
``portal.imaging.access.session_gate``; absent, another center's and blinded all raise ``NotFound``."""
from __future__ import annotations

from portal.centers.policy import Action
from portal.core.errors import NotFound
from portal.imaging.access import session_gate
from portal.results.models import ResultSet


def access_result_set(*, user, id, action: Action = Action.RESULTS_READ) -> ResultSet:
    """One result set ``user`` may do ``action`` on."""
    result_set = ResultSet.objects.select_related("image", "model_version").filter(pk=id).first()
    if result_set is None:
        raise NotFound("No such result set.")
    session_gate(user=user, center_id=result_set.center_id, session_id=result_set.image.session_id, action=action,
                 kind="results.resultset", object_id=id)
    return result_set
