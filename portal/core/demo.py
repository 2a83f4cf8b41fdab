"""Demo content for ``seed_demo``: the committed demo model and a synthetic image session."""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from portal.centers.models import Membership, Role

DEMO_BUNDLE_DIR = Path(settings.BASE_DIR) / "inference" / "assets" / "demo_model"
DEMO_IMAGE_COUNT = 3
DEMO_SEED = 2025
DEMO_UM_PER_PX = 0.25


def _demo_pngs(count: int, seed: int) -> list[tuple[str, bytes]]:
    """Synthetic brightfield fields drawn by our own generator, as PNG bytes with a pHYs pixel size."""
    from inference.synth.generator import FieldOptions, render_field

    rng = np.random.default_rng(seed)
    files = []
    for index in range(count):
        rgb, _, _ = render_field(rng, FieldOptions(height=512, width=640), um_per_px=DEMO_UM_PER_PX)
        buffer = io.BytesIO()
        PILImage.fromarray(rgb).save(buffer, format="PNG")
        files.append((f"demo_field_{index + 1}.png", buffer.getvalue()))
    return files


def _register_demo_model(center) -> list[str]:
    if not (DEMO_BUNDLE_DIR / "bundle.json").exists():
        return [f"Demo model: none found at {DEMO_BUNDLE_DIR} (analysis needs a registered model)."]
    from portal.mlmodels.services import model_register_bundle

    model_version = model_register_bundle(path=DEMO_BUNDLE_DIR, center=None, user=None, activate=True)
    return [f"Demo model: {model_version.name} {model_version.version} (site default)."]


def seed_demo_model_and_session(*, center) -> list[str]:
    """Register the demo model bundle and upload a synthetic session once; returns lines to print."""
    from portal.imaging.models import ImageSession
    from portal.imaging.services import images_upload, patient_create, session_create

    lines = _register_demo_model(center)
    if ImageSession.objects.filter(center=center).exists():
        lines.append("Demo session: already there.")
        return lines
    uploader = Membership.objects.filter(center=center, role=Role.UPLOADER).select_related("user").first().user
    files = _demo_pngs(DEMO_IMAGE_COUNT, DEMO_SEED)
    patient = patient_create(center=center, user=uploader, birth_year_bucket="1985-1989")
    session = session_create(
        patient=patient, user=uploader, acquisition_date=dt.date.today(), microscope="Demo inverted microscope",
        objective="40x", modality="hoffman", um_per_px=DEMO_UM_PER_PX,
    )
    result = images_upload(
        session=session, user=uploader,
        files=[SimpleUploadedFile(name, data, content_type="image/png") for name, data in files],
    )
    lines.append(f"Demo session: patient {patient.code}, {len(result.created)} synthetic images uploaded.")
    return lines
