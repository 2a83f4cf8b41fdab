"""Celery app and thin tasks. Import ``workers.celery_app.app`` to send or run tasks."""
