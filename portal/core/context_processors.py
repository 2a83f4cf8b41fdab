from portal.centers.models import Role
from portal.centers.selectors import user_roles

# Roles that make each nav entry's page answer (the pages' own checks: imaging READ_ROLES, review VIEW_ROLES,
# mlmodels REGISTRY_ROLES); validators and stain technicians see only what they can open.
_NAV_ROLES = {
    "imaging": {Role.UPLOADER, Role.REVIEWER, Role.CENTER_ADMIN},
    "review": {Role.UPLOADER, Role.REVIEWER, Role.CENTER_ADMIN},
    "models": {Role.UPLOADER, Role.REVIEWER, Role.CENTER_ADMIN},
}


def roles(request):
    """Expose the user's roles per center to every template as ``user_center_roles``, and which nav entries
    lead to a page they may open as ``nav`` (names of ``_NAV_ROLES``, plus ``validation`` for any role)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_center_roles": {}, "nav": set()}
    by_center = user_roles(user)
    held = set().union(*by_center.values()) if by_center else set()
    nav = {name for name, allowed in _NAV_ROLES.items() if held & allowed}
    if held:
        nav.add("validation")
    return {"user_center_roles": by_center, "nav": nav}
