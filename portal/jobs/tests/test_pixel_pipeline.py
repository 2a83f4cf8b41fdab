"""One pixel pipeline through the portal: the same field uploaded as 8-bit PNG, 16-bit gray TIFF and
16-bit RGB TIFF is analysed into the same detections (upload -> job -> result set)."""
from __future__ import annotations

import io
from unittest import mock

import numpy as np
import pytest
import tifffile
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from portal.imaging.services import images_upload
from portal.jobs import services
from portal.results.models import ResultSet
from portal.testing.jobs import make_session, synth_rgb


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _tiff(arr: np.ndarray, photometric: str) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, photometric=photometric)
    return buf.getvalue()


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@pytest.fixture
def sent():
    """Messages the services send to the broker (job ids), instead of a broker."""
    with mock.patch.object(services, "_send") as send:
        yield send


def test_the_same_field_as_8_bit_png_and_16_bit_gray_and_rgb_tiff_gives_the_same_detections(cast, tiny_model, sent):
    rgb, _ = synth_rgb(3, 192)
    gray = np.rint(rgb.astype(np.float64).mean(axis=2)).astype(np.uint8)
    png = io.BytesIO()
    PILImage.fromarray(gray).save(png, format="PNG")
    files = [
        SimpleUploadedFile("field.png", png.getvalue()),
        SimpleUploadedFile("field_gray16.tif", _tiff(gray.astype(np.uint16) * 257, "minisblack")),
        SimpleUploadedFile("field_rgb16.tif", _tiff(np.repeat(gray[:, :, None], 3, 2).astype(np.uint16) * 257,
                                                    "rgb")),
    ]
    session = make_session(cast.a)
    result = images_upload(session=session, files=files, user=cast.a.uploader)
    assert not result.errors and len(result.created) == 3
    assert sorted(i.bit_depth for i in result.created) == [8, 16, 16]

    job = services.job_create(session=session, user=cast.a.uploader)
    assert services.job_run(job_id=job.pk, worker_id="test:1") == "succeeded"

    detections = []
    for image in result.created:
        rows = list(ResultSet.objects.get(job=job, image=image).detections.order_by("index"))
        detections.append([(r.class_name, (r.x1, r.y1, r.x2, r.y2)) for r in rows])
    reference = detections[0]
    assert len(reference) > 0
    for other in detections[1:]:
        assert len(other) == len(reference)
        for (cls_a, box_a), (cls_b, box_b) in zip(reference, other):
            assert cls_a == cls_b and _iou(box_a, box_b) >= 0.95
