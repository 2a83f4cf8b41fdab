"""Factories for tests and access declarations: patients, sessions and real (uploaded) images.

``cc`` is a ``portal.testing.cast.CenterCast`` (``cast.a`` or ``cast.b``). Images go through the real
upload service (a small random PNG), so their files exist under ``settings.MEDIA_ROOT``.
"""
from __future__ import annotations

import io
from datetime import date

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from portal.imaging.models import Image, ImageSession, Patient
from portal.imaging.services import images_upload, patient_create, session_create


def png_upload(name: str = "field.png", *, size=(40, 32), seed: int | None = None) -> SimpleUploadedFile:
    """A small random RGB PNG as an uploaded file (random, so never a duplicate)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(arr).save(buf, format="PNG")
    return SimpleUploadedFile(name, buf.getvalue(), content_type="image/png")


def make_patient(cc, *, user=None) -> Patient:
    return patient_create(center=cc.center, user=user or cc.uploader)


def make_session(cc, *, patient: Patient | None = None, user=None, **fields) -> ImageSession:
    patient = patient or make_patient(cc, user=user)
    fields.setdefault("acquisition_date", date(2024, 3, 1))
    return session_create(patient=patient, user=user or cc.uploader, **fields)


def make_image(cc, *, session: ImageSession | None = None, user=None) -> Image:
    session = session or make_session(cc, user=user)
    result = images_upload(session=session, files=[png_upload()], user=user or cc.uploader)
    assert not result.errors, result.errors
    return result.created[0]


def make_imaging(cc) -> dict:
    """A patient with a session holding one image: {"patient", "session", "image", "center"}."""
    image = make_image(cc)
    return {"center": cc.center, "patient": image.session.patient, "session": image.session, "image": image}
