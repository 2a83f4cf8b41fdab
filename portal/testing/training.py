"""Test support for datasets and training: synthetic sessions whose model result sets are the generator's
true cells (with a few deliberate mistakes), reviewed through the review services.

Per image of a reviewed session: every true cell becomes a model detection; reviewer 1 accepts them,
corrects the class of one, rejects one false positive (a made-up detection on background), marks one
"uncertain", disagrees with reviewer 2 on one (disputed), and draws one cell the "model" missed.
"""
from __future__ import annotations

import datetime
import math
import secrets

import numpy as np
from django.utils import timezone
from pycocotools import mask as mask_utils

from portal.imaging.models import ImageSession, Patient
from portal.results.models import Detection, ResultSet, ResultSetStatus, ResultSource
from portal.review.classes import CLASS_NAMES
from portal.testing.jobs import make_image


def synth_field(seed: int, size: int = 128):
    """(rgb uint8, µm/px, [(class name, bool mask)]) of the project's generator, the same for a seed."""
    from inference.synth.generator import FieldOptions, render_field

    rng = np.random.default_rng(seed)
    return render_field(rng, FieldOptions(height=size, width=size, cells=(4, 7), debris=(1, 3)))


def _mask_fields(mask: np.ndarray, um_per_px: float | None) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
    ys, xs = np.nonzero(mask)
    area = float(mask.sum())
    fields = {"mask_rle": {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": rle["counts"].decode("ascii")},
              "x1": x, "y1": y, "x2": x + w, "y2": y + h, "area_px": area,
              "centroid_x_px": float(xs.mean()), "centroid_y_px": float(ys.mean())}
    if um_per_px:
        fields.update(area_um2=area * um_per_px ** 2, diameter_um=2 * math.sqrt(area / math.pi) * um_per_px)
    return fields


def make_session_for(center_cast, *, patient: Patient | None = None, um_per_px: float = 0.25) -> ImageSession:
    user = center_cast.uploader
    patient = patient or Patient.objects.create(center=center_cast.center, code=f"P-{secrets.token_hex(5)}",
                                                created_by=user)
    return ImageSession.objects.create(center=center_cast.center, patient=patient, created_by=user,
                                       acquisition_date=datetime.date(2024, 6, 1), um_per_px=um_per_px)


def make_synthetic_image(session: ImageSession, *, seed: int, size: int = 128):
    """An image of ``session`` with a complete model result set holding the generator's true cells
    plus one false positive (last). Returns (image, [detections in truth order], false positive)."""
    rgb, um, anns = synth_field(seed, size)
    image = make_image(session, rgb=rgb)
    rs = ResultSet.objects.create(center=image.center, image=image, source=ResultSource.MODEL,
                                  status=ResultSetStatus.COMPLETE, completed_at=timezone.now())
    rows = []
    for k, (cls, mask) in enumerate(anns):
        rows.append(Detection(result_set=rs, index=k, source=ResultSource.MODEL, class_name=cls,
                              score=round(0.97 - 0.02 * k, 3), **_mask_fields(mask, image.um_per_px)))
    fake = np.zeros((size, size), bool)
    fake[2:8, 2:8] = True
    rows.append(Detection(result_set=rs, index=len(rows), source=ResultSource.MODEL, class_name="leukocyte",
                          score=0.6, **_mask_fields(fake, image.um_per_px)))
    Detection.objects.bulk_create(rows)
    dets = list(rs.detections.order_by("index"))
    return image, dets[:-1], dets[-1]


def review_image(center_cast, image, dets, false_positive, *, mistakes: bool = True) -> dict:
    """Review through the services; returns what was done, by kind."""
    from portal.review.services import decision_set, manual_instance_create

    reviewer, second = center_cast.reviewer, center_cast.reviewer2
    done = {"accepted": 0, "corrected": 0, "rejected": 0, "uncertain": 0, "disputed": 0, "drawn": 0}
    for k, det in enumerate(dets):
        if mistakes and k == 1:
            other = next(c for c in CLASS_NAMES if c != det.class_name)
            decision_set(user=reviewer, detection=det, verdict="accept", class_name=other)
            done["corrected"] += 1
        elif mistakes and k == 2:
            decision_set(user=reviewer, detection=det, verdict="uncertain")
            done["uncertain"] += 1
        elif mistakes and k == 3:
            decision_set(user=reviewer, detection=det, verdict="accept")
            decision_set(user=second, detection=det, verdict="reject")
            done["disputed"] += 1
        else:
            decision_set(user=reviewer, detection=det, verdict="accept")
            done["accepted"] += 1
    decision_set(user=reviewer, detection=false_positive, verdict="reject")
    done["rejected"] += 1
    if mistakes:
        w = image.width
        manual_instance_create(user=reviewer, image=image, class_name="round_spermatid",
                               polygon=[[w - 14, w - 14], [w - 4, w - 14], [w - 4, w - 4], [w - 14, w - 4]])
        done["drawn"] += 1
    return done


def build_training_world(cast, center_cast) -> dict:
    """For the access matrix: the job world of ``portal.testing.jobs`` plus a reviewed synthetic session
    released for training, a dataset version of it (one patient: all train, no held-out images), a
    queued training job and a finished one whose candidate is a registry row without files."""
    from portal.datasets.services import dataset_version_create, training_use_set
    from portal.jobs.models import JobStatus
    from portal.testing.jobs import build_job_world, make_model_version
    from portal.training.models import TrainingJob

    world = build_job_world(cast, center_cast)
    session = make_session_for(center_cast)
    image, dets, fp = make_synthetic_image(session, seed=7)
    review_image(center_cast, image, dets, fp, mistakes=False)
    training_use_set(user=center_cast.admin, session=session, consent=True)
    version = dataset_version_create(user=center_cast.admin, center=center_cast.center, name="matrix",
                                     sessions=[session])
    candidate = make_model_version(center=center_cast.center, name="candidate")
    queued = TrainingJob.objects.create(center=center_cast.center, dataset_version=version, status=JobStatus.QUEUED,
                                        options={"iterations": 2}, max_iter=2)
    done = TrainingJob.objects.create(center=center_cast.center, dataset_version=version,
                                      status=JobStatus.SUCCEEDED, options={"iterations": 2}, max_iter=2,
                                      iteration=2, candidate=candidate)
    return {**world, "training_session": session, "training_image": image, "dataset_version": version,
            "queued_training_job": queued, "training_job": done, "candidate": candidate}
