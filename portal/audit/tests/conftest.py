import pytest


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AUDIT_CHECKPOINT_PATH = tmp_path / "audit_checkpoint.json"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    settings.INFERENCE_AUTO_ON_UPLOAD = False
    # Checkpoint objects: published by the first write of each test and then only when forced, whatever
    # the machine's speed (tests of the throttle set their own interval).
    settings.AUDIT_CHECKPOINT_NAME = "test-host"
    settings.AUDIT_CHECKPOINT_PUBLISH_SECONDS = 3600
    from portal.audit.services import checkpoint_publish_reset

    checkpoint_publish_reset()
    yield
    checkpoint_publish_reset()
