"""``dataset_version_create`` renders the PNGs and masks outside any database transaction; the short
transaction that saves the row refuses when another version of the line was made meanwhile, and every file
written is removed when the rendering or the save fails."""
from __future__ import annotations

from unittest import mock

import pytest
from django.core.files.storage import default_storage
from django.db import connection

from portal.core.errors import Conflict
from portal.datasets import services
from portal.datasets.models import DatasetLine, DatasetVersion
from portal.testing.training import make_session_for, make_synthetic_image, review_image

pytestmark = pytest.mark.django_db


def _released_session(cc, seed):
    session = make_session_for(cc)
    image, dets, fp = make_synthetic_image(session, seed=seed)
    review_image(cc, image, dets, fp)
    services.training_use_set(user=cc.admin, session=session, consent=True)
    return session


def _stored_files() -> list[str]:
    found = []
    try:
        dirs, _ = default_storage.listdir("datasets")
    except FileNotFoundError:
        return found
    for prefix in dirs:
        _, names = default_storage.listdir(f"datasets/{prefix}/images")
        found += names
    return found


def test_images_are_rendered_outside_any_transaction(cast, storage):
    session = _released_session(cast.a, 1)
    outer = len(connection.atomic_blocks)  # the test's own transaction
    depths = []
    real = services.model_view_png

    def render(image):
        depths.append(len(connection.atomic_blocks) - outer)
        return real(image)

    with mock.patch.object(services, "model_view_png", render):
        version = services.dataset_version_create(user=cast.a.admin, center=cast.a.center, name="d",
                                                  sessions=[session])
    assert depths == [0]
    assert version.number == 1 and version.line.test_patient_codes == version.manifest["test_patients"]


def test_a_rendering_failure_leaves_no_row_and_no_file(cast, storage):
    session = _released_session(cast.a, 2)
    calls = []
    real = services.model_view_png

    def render(image):
        calls.append(image.pk)
        if len(calls) == 1:
            return real(image)
        raise OSError("disk full")

    second = make_synthetic_image(session, seed=3)
    review_image(cast.a, *second)
    with mock.patch.object(services, "model_view_png", render), pytest.raises(OSError):
        services.dataset_version_create(user=cast.a.admin, center=cast.a.center, name="d", sessions=[session])
    assert len(calls) == 2  # the first image was written before the failure
    assert not DatasetVersion.objects.exists() and not DatasetLine.objects.exists()
    assert _stored_files() == []


def test_a_version_made_while_rendering_refuses_this_one_and_its_files_go(cast, storage):
    session = _released_session(cast.a, 4)
    real = services.model_view_png
    state = {"racing": False}

    def render(image):
        if not state["racing"]:  # another request makes version 1 of the same line meanwhile
            state["racing"] = True
            services.dataset_version_create(user=cast.a.admin, center=cast.a.center, name="d", sessions=[session])
        return real(image)

    with mock.patch.object(services, "model_view_png", render), pytest.raises(Conflict):
        services.dataset_version_create(user=cast.a.admin, center=cast.a.center, name="d", sessions=[session])
    (other,) = DatasetVersion.objects.all()
    assert other.number == 1
    assert _stored_files() == [n.rsplit("/", 1)[1] for n in (f["name"] for f in other.manifest["files"][:-1])]
    # the line is free again: the retry makes version 2
    assert services.dataset_version_create(user=cast.a.admin, center=cast.a.center, name="d",
                                           sessions=[session]).number == 2
