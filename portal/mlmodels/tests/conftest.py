"""Fixtures shared with the jobs tests (tiny model bundle, storage in tmp)."""
from portal.jobs.tests.conftest import fast_password_hasher, storage, tiny_bundle_dir, tiny_model  # noqa: F401
