from django.apps import AppConfig


class ImagingConfig(AppConfig):
    name = "portal.imaging"
    label = "imaging"
