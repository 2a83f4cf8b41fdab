"""Demo content for ``seed_demo``: the committed demo model, a synthetic image session to review, and a
blinded validation study (its own synthetic session, analysed at seeding) with cells to score."""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from portal.centers.models import Membership, Role
from portal.core.errors import DomainError

DEMO_BUNDLE_DIR = Path(settings.BASE_DIR) / "inference" / "assets" / "demo_model"
DEMO_IMAGE_COUNT = 3
DEMO_SEED = 2025
DEMO_UM_PER_PX = 0.25
DEMO_STUDY_NAME = "Demo validation study"
DEMO_STUDY_IMAGE_COUNT = 2
DEMO_STUDY_CELLS = 20
DEMO_VALIDATORS = ("validator", "validator2")


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


def _user_with_role(center, role: str, username: str | None = None):
    rows = Membership.objects.filter(center=center, role=role).select_related("user").order_by("user__username")
    if username is not None:
        rows = rows.filter(user__username=username)
    row = rows.first()
    return row.user if row else None


def seed_demo_validation_study(*, center) -> list[str]:
    """A whole-field validation study, open for scoring, once: its own synthetic session is analysed by
    the demo model here (the same ``job_run`` a worker runs), the demo validators are added and the
    study's center stain technicians enter stains. Returns lines to print."""
    from portal.imaging.models import ImageSession
    from portal.imaging.services import images_upload, patient_create, session_create
    from portal.jobs.models import InferenceJob
    from portal.jobs.services import job_create, job_run
    from portal.mlmodels.selectors import model_active_for_center
    from portal.validation import services as validation
    from portal.validation.models import Design, Study

    if Study.objects.filter(center=center, name=DEMO_STUDY_NAME).exists():
        return ["Demo validation study: already there."]
    model_version = model_active_for_center(center=center)
    admin = _user_with_role(center, Role.CENTER_ADMIN)
    uploader = _user_with_role(center, Role.UPLOADER)
    validators = [_user_with_role(center, Role.VALIDATOR, name) for name in DEMO_VALIDATORS]
    if model_version is None or admin is None or uploader is None or None in validators:
        return ["Demo validation study: not created (needs the demo model, a center admin, an uploader and "
                f"the validators {', '.join(DEMO_VALIDATORS)})."]
    patient = patient_create(center=center, user=uploader, birth_year_bucket="1980-1984")
    session = session_create(
        patient=patient, user=uploader, acquisition_date=dt.date.today(), microscope="Demo inverted microscope",
        objective="40x", modality="hoffman", um_per_px=DEMO_UM_PER_PX,
    )
    files = _demo_pngs(DEMO_STUDY_IMAGE_COUNT, DEMO_SEED + 1)
    images_upload(session=session, user=uploader,
                  files=[SimpleUploadedFile(f"study_{name}", data, content_type="image/png") for name, data in files])
    job = (InferenceJob.objects.filter(session=session, model_version=model_version).order_by("-created_at").first()
           or job_create(session=session, user=None, model_version=model_version, triggered_by="demo"))
    outcome = job_run(job_id=job.pk, device="cpu")  # the worker's copy of the message then finds it done
    if outcome != "succeeded" or not ImageSession.objects.filter(pk=session.pk, images__status="analyzed").exists():
        return [f"Demo validation study: not created (the demo analysis ended {outcome})."]
    study = validation.study_create(
        actor=admin, center=center, name=DEMO_STUDY_NAME, model_version=model_version, sessions=[session],
        design=Design.WHOLE_FIELD, candidate_threshold=0.05, subsample_size=DEMO_STUDY_CELLS,
        validators_per_cell=len(validators),
    )
    for user in validators:
        validation.study_validator_add(actor=admin, study=study, user=user)
    try:
        study = validation.study_open(actor=admin, study=study)
    except DomainError as exc:
        return [f"Demo validation study: left as a draft ({exc.message})."]
    stain = _user_with_role(center, Role.STAIN_TECHNICIAN)
    return [f"Demo validation study: {study.cells.count()} cells to score by {' and '.join(DEMO_VALIDATORS)}"
            + (f"; stain results by {stain.get_username()}" if stain else "") + f" (patient {patient.code})."]
