"""A result set remembers how its image reached the model; a pixel size that is unknown, or one the
model cannot use, is a visible warning in the result set API, the session page's progress panel and
the analysis page, not a silent answer."""
from __future__ import annotations

from unittest import mock

import pytest
import torch

from portal.jobs import services
from portal.results.models import ResultSet
from portal.testing.jobs import make_image, make_session


@pytest.fixture(autouse=True)
def one_thread_no_broker():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with mock.patch.object(services, "_send"):
        yield
    torch.set_num_threads(previous)


def _run(cast, session):
    make_image(session, seed=1)
    job = services.job_create(session=session, user=cast.a.uploader)
    assert services.job_run(job_id=job.pk, worker_id="test:1") == "succeeded"
    return job, ResultSet.objects.get(job=job)


def test_an_image_without_pixel_size_gets_a_stored_and_shown_warning(cast, tiny_model, client):
    job, result_set = _run(cast, make_session(cast.a, um_per_px=None))
    assert result_set.scale_status == "unknown" and "pixel size (µm/px) is unknown" in result_set.scale_warning
    assert result_set.model_um_per_px is None
    client.force_login(cast.a.reviewer)
    sets = client.get(f"/api/v1/images/{result_set.image_id}/result-sets/").json()
    listed = sets if isinstance(sets, list) else sets["results"]
    assert listed[0]["scale_status"] == "unknown" and listed[0]["scale_warning"] == result_set.scale_warning
    progress = client.get(f"/api/v1/sessions/{job.session_id}/jobs/").json()
    image = progress["jobs"][0]["images"][0]
    assert image["scale_status"] == "unknown" and image["scale_warning"] == result_set.scale_warning
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "scale-warning" in page and "is unknown" in page


def test_a_model_without_a_pixel_size_warns_even_when_the_image_has_one(cast, tiny_model, client):
    _job, result_set = _run(cast, make_session(cast.a, um_per_px=0.25))
    assert result_set.scale_status == "model_unscaled" and "INPUT.UM_PER_PX" in result_set.scale_warning
