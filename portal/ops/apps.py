from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: readiness, Prometheus metrics, backup and restore. The top app: it reads the others."""

    name = "portal.ops"
    label = "ops"
