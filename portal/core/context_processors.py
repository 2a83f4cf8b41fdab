from portal.centers.selectors import user_roles


def roles(request):
    """Expose the user's roles per center to every template as ``user_center_roles``."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_center_roles": {}}
    return {"user_center_roles": user_roles(user)}
