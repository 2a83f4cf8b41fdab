"""Test helpers: images, model output and studies built directly with the ORM (no other app's services).

``PLANTED`` is the case the end-to-end tests use: 10 model picks (round_spermatid at or above 0.5) of
which 8 are stain-positive, 4 embryologist picks of which 2 are positive, and 3 detections the model
does not pick (below threshold or another class). Expected model PPV 8/10 = 80.0%.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import itertools

import numpy as np
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from portal.testing.cast import PASSWORD
from portal.validation import services
from portal.validation.models import Design, Morphology, Stain

_counter = itertools.count(1)

# (class, score, x, y) on a 400 x 300 image; scores have distinctive digits so leaks are easy to spot.
PLANTED_DETECTIONS = [
    ("round_spermatid", 0.913577, 40, 40), ("round_spermatid", 0.884231, 100, 40),
    ("round_spermatid", 0.861119, 160, 40), ("round_spermatid", 0.833347, 220, 40),
    ("round_spermatid", 0.794413, 280, 40), ("round_spermatid", 0.772289, 340, 40),
    ("round_spermatid", 0.741163, 40, 120), ("round_spermatid", 0.717779, 100, 120),
    ("round_spermatid", 0.683331, 160, 120), ("round_spermatid", 0.651197, 220, 120),
    ("round_spermatid", 0.311719, 280, 120), ("erythrocyte", 0.957731, 340, 120),
    ("spermatocyte", 0.527713, 40, 200),
]
PLANTED_PICKS = [(100, 200), (160, 200), (220, 200), (280, 200)]
PLANTED_MODEL_PPV_TEXT = "80.0%"
PLANTED_EMBRYOLOGIST_PPV_TEXT = "50.0%"


def png_bytes(width: int = 400, height: int = 300, *, seed: int = 0) -> bytes:
    """A synthetic brightfield-like 8-bit RGB image with round blobs on a grey background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = 170 + rng.normal(0, 6, (height, width))
    for x in range(20, width, 60):
        for y in range(20, height, 80):
            pixels -= 55 * np.exp(-(((xx - x - 20) ** 2 + (yy - y - 20) ** 2) / (2 * 9.0**2)))
    arr = np.clip(pixels, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(np.stack([arr] * 3, axis=-1), "RGB").save(out, format="PNG")
    return out.getvalue()


def make_session(cc, *, user=None):
    from portal.imaging.models import ImageSession, Patient

    n = next(_counter)
    user = user or cc.uploader
    patient = Patient.objects.create(center=cc.center, code=f"{cc.center.code}-VT{n:05d}", created_by=user)
    return ImageSession.objects.create(center=cc.center, patient=patient, acquisition_date=datetime.date(2024, 5, 1),
                                       created_by=user)


def make_image(session, *, width: int = 400, height: int = 300, um_per_px: float = 0.2):
    from portal.imaging.models import Image

    n = next(_counter)
    data = png_bytes(width, height, seed=n)
    image = Image(center_id=session.center_id, session=session, original_sha256=f"{n:064x}",
                  stored_sha256=hashlib.sha256(data).hexdigest(),
                  original_format="png", width=width, height=height, um_per_px=um_per_px, created_by=session.created_by)
    image.file.save(f"{image.id}.png", ContentFile(data), save=False)
    image.display_file.save(f"{image.id}.png", ContentFile(data), save=False)
    image.save()
    return image


def make_model_version():
    from portal.mlmodels.models import ModelVersion

    n = next(_counter)
    return ModelVersion.objects.create(name="spermatid-detector-vt", version=f"9.{n}", weights_sha256="ab" * 32,
                                       class_names=["round_spermatid", "spermatocyte", "elongated_spermatid",
                                                    "spermatozoon", "erythrocyte", "leukocyte"],
                                       bundle_path="/nonexistent")


def make_result_set(image, model_version, detections=PLANTED_DETECTIONS):
    from django.utils import timezone

    from portal.results.models import Detection, ResultSet

    rs = ResultSet.objects.create(center_id=image.center_id, image=image, model_version=model_version,
                                  status="complete", completed_at=timezone.now())
    for i, (cls, score, x, y) in enumerate(sorted(detections, key=lambda d: -d[1])):
        Detection.objects.create(result_set=rs, index=i, class_name=cls, score=score, x1=x - 8, y1=y - 8, x2=x + 8,
                                 y2=y + 8, mask_rle={"size": [image.height, image.width], "counts": f"{i}"},
                                 area_px=200.0, centroid_x_px=x, centroid_y_px=y)
    return rs


def make_draft_study(cast, cc, *, design: str = Design.PICKED_CELLS, validators=("validator", "validator2"),
                     picks=PLANTED_PICKS, **extra):
    """A draft study of one image with the planted model output, validators added, picks made."""
    session = make_session(cc)
    image = make_image(session)
    mv = make_model_version()
    make_result_set(image, mv)
    study = services.study_create(actor=cc.admin, center=cc.center, name=f"Study {next(_counter)}",
                                  model_version=mv, sessions=[session], design=design, **extra)
    for name in validators:
        services.study_validator_add(actor=cc.admin, study=study, user=getattr(cc, name))
    if design == Design.PICKED_CELLS:
        field = services.study_fields_ensure(study=study)[0]
        for x, y in picks:
            services.pick_add(actor=cc.uploader, study=study, field=field, x_px=x, y_px=y)
    return study


def make_open_study(cast, cc, **kw):
    study = make_draft_study(cast, cc, **kw)
    return services.study_open(actor=cc.admin, study=study)


def planted_truth(cell) -> bool:
    """Ground truth of the planted case: 8 of the 10 model picks, 2 of the 4 embryologist picks."""
    if cell.from_model:
        return cell.model_score not in (0.717779, 0.651197)
    return cell.x_px in (100, 160)


def score_all(study, membership, *, call=lambda cell: Morphology.YES, stains: bool = True):
    """Score every cell of one validator (stains from the planted truth)."""
    for a in membership.assignments.select_related("cell"):
        positive = planted_truth(a.cell)
        services.assignment_score(
            actor=membership.user, study=study, membership=membership, public_id=a.cell.public_id,
            morphology=call(a.cell), prm1=(Stain.POSITIVE if positive else Stain.NEGATIVE) if stains else None,
            pna=(Stain.POSITIVE if positive else Stain.NEGATIVE) if stains else None,
        )


def make_signed_study(cast, cc, **kw):
    study = make_open_study(cast, cc, **kw)
    for membership in study.validators.select_related("user"):
        score_all(study, membership)
        services.study_sign(actor=membership.user, study=study, membership=membership, password=PASSWORD)
    return study


def make_unblinded_study(cast, cc, **kw):
    study = make_signed_study(cast, cc, **kw)
    study = services.study_lock(actor=cc.admin, study=study)
    return services.study_unblind(actor=cc.admin, study=study)
