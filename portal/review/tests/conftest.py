"""Fixtures of the review tests: a temporary MEDIA_ROOT and an image with model detections."""
from __future__ import annotations

import pytest

from portal.testing.cast import PASSWORD  # noqa: F401  (re-exported for tests that log in)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}


@pytest.fixture
def image(cast):
    """An analyzed 400x300 image of center A with 6 circular detections, one per class."""
    from portal.testing.review import make_reviewable_image

    return make_reviewable_image(cast.a, n=6)


@pytest.fixture
def detections(image):
    from portal.results.models import Detection

    return list(Detection.objects.filter(result_set__image=image).order_by("index"))


def client_for(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(user)
    return client
