from django.apps import AppConfig


class CentersConfig(AppConfig):
    name = "portal.centers"
    label = "centers"

    def ready(self):
        from portal.centers import signals  # noqa: F401 - connects the login receiver
