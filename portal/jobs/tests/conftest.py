"""Fixtures for the jobs, registry and results tests: a tiny real model bundle and storage in tmp."""
from __future__ import annotations

import shutil

import pytest


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """The cast's 16 users are hashed with PBKDF2 otherwise (seconds per test on 2 cores)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory):
    """The tiny bundle, written once per test session (from the small trained detector)."""
    from portal.jobs.testing import tiny_bundle

    return tiny_bundle(tmp_path_factory.mktemp("bundles") / "tiny")


@pytest.fixture
def storage(settings, tmp_path):
    """MEDIA_ROOT and the model store in a temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MODEL_STORE_DIR = tmp_path / "media" / "models"
    yield tmp_path
    shutil.rmtree(tmp_path / "media", ignore_errors=True)


@pytest.fixture
def tiny_model(db, storage, tiny_bundle_dir):
    """The tiny bundle registered as the site default."""
    from portal.jobs.inference import predictor_cache_clear
    from portal.mlmodels.services import model_register_bundle

    predictor_cache_clear()
    yield model_register_bundle(path=tiny_bundle_dir, user=None, activate=True)
    predictor_cache_clear()
