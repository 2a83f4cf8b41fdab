"""Template context: the user's roles per center, which nav entries lead to a page they may open, and how
many unread notifications they have."""
from django.utils.functional import SimpleLazyObject

from portal.centers.policy import Action, roles_allow
from portal.centers.selectors import user_roles
from portal.core.selectors import unread_count

# Each nav entry and the action (``portal.centers.policy``) its page needs; validators and stain
# technicians, blinded to the model, see only what they can open.
_NAV_ACTIONS = {
    "imaging": Action.IMAGING_READ,
    "review": Action.REVIEW_VIEW,
    "models": Action.MODELS_READ,
    "training": Action.MODELS_PROMOTE,  # one entry for center admins (datasets are linked from there)
}


def roles(request):
    """Expose the user's roles per center to every template as ``user_center_roles``, and which nav entries
    lead to a page they may open as ``nav`` (names of ``_NAV_ACTIONS``, plus ``validation`` for any role)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_center_roles": {}, "nav": set(), "unread_notifications": 0}
    by_center = user_roles(user)
    held = set().union(*by_center.values()) if by_center else set()
    nav = {name for name, action in _NAV_ACTIONS.items() if roles_allow(held, action)}
    if held:
        nav.add("validation")
    # counted only when a template shows it (the nav does; JSON views never render it)
    return {"user_center_roles": by_center, "nav": nav,
            "unread_notifications": SimpleLazyObject(lambda: unread_count(user))}
