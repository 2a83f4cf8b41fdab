from django.apps import AppConfig


class CentersConfig(AppConfig):
    name = "portal.centers"
    label = "centers"
