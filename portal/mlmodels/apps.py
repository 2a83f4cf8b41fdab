from django.apps import AppConfig


class MlmodelsConfig(AppConfig):
    name = "portal.mlmodels"
    label = "mlmodels"
