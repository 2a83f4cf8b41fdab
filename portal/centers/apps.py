from django.apps import AppConfig


class CentersConfig(AppConfig):
    name = "portal.centers"
    label = "centers"

    def ready(self):
        from django.core.checks import register

        from portal.centers import signals  # noqa: F401 - connects the login receiver
        from portal.centers.checks import check_app_role

        register(check_app_role, "database_rls", deploy=True)
