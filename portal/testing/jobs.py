"""Test and benchmark support for jobs: a tiny model bundle, synthetic images, sessions with images.

``tiny_bundle`` turns a trained small detector into a fast one (test short edge 192 px) so real worker
processes can run hundreds of images on 2 CPU cores: the weights of the demo model committed in
``inference/assets/demo_model``.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import secrets
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile

REPO = Path(settings.BASE_DIR)
DEMO_BUNDLE = REPO / "inference" / "assets" / "demo_model"


def tiny_model_source() -> tuple[Path, Path]:
    """(config, weights) of the small trained detector the tiny bundle is made from (the demo model)."""
    from inference.bundle import load_bundle

    bundle = load_bundle(DEMO_BUNDLE)
    return Path(bundle.config_path), Path(bundle.weights_path)


def tiny_bundle(out_dir: Path, *, name: str = "tiny-test", version: str = "1", min_size: int = 128,
                score_thresh: float = 0.5, max_detections: int = 20, jitter: float = 0.0) -> Path:
    """Write a bundle whose predictor resizes images to ``min_size`` px (fast on CPU); returns its dir."""
    from inference.bundle import write_bundle
    from inference.config import load_config
    from inference.data.classes import CLASS_NAMES

    config, weights = tiny_model_source()
    cfg = load_config(str(config))
    cfg.INPUT.MIN_SIZE_TEST = min_size
    cfg.INPUT.MAX_SIZE_TEST = max(256, int(min_size * 4 / 3))
    # the fixed small input is the point (speed): no physical-scale resampling and tiling
    cfg.INPUT.UM_PER_PX = 0.0
    cfg.INPUT.UM_PER_PX_RANGE = []
    # Few, confident detections: the mask head (per detection) dominates CPU time otherwise.
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = score_thresh
    cfg.TEST.DETECTIONS_PER_IMAGE = max_detections
    classes = list(CLASS_NAMES[: int(cfg.MODEL.ROI_HEADS.NUM_CLASSES)])
    state: str | dict = str(weights)
    if jitter:  # other weights (another sha256) that predict about the same
        from inference.checkpoint import read_state_dict

        state = read_state_dict(str(weights))
        key = next(k for k in state if k.endswith("bias") and state[k].is_floating_point())
        state[key] = state[key] + jitter
    write_bundle(str(out_dir), name=name, version=version, class_names=classes, config=cfg, weights=state,
                 metrics={"note": "tiny test bundle"})
    return Path(out_dir)


def synth_rgb(seed: int, size: int = 128) -> tuple[np.ndarray, float]:
    """A synthetic brightfield field (uint8 H×W×3) and its µm/px, the same for the same seed."""
    from inference.synth.generator import FieldOptions, render_field

    rng = np.random.default_rng(seed)
    rgb, um, _ = render_field(rng, FieldOptions(height=size, width=size, cells=(2, 6), debris=(1, 4)))
    return rgb, um


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def make_session(center_cast, *, um_per_px: float | None = 0.25):
    """A patient and an image session of ``center_cast`` (``cast.a``/``cast.b``), created by its uploader."""
    from portal.imaging.models import ImageSession, Patient

    user = center_cast.uploader
    patient = Patient.objects.create(center=center_cast.center, code=f"T-{secrets.token_hex(6)}", created_by=user)
    return ImageSession.objects.create(center=center_cast.center, patient=patient, created_by=user,
                                       acquisition_date=datetime.date(2024, 5, 1), um_per_px=um_per_px)


def make_image(session, *, seed: int = 0, size: int = 128, display: bool = True, rgb: np.ndarray | None = None):
    """An image of ``session`` with its file and (``display``) its 8-bit display PNG written to storage."""
    from portal.imaging.models import Image, UmPerPxSource

    if rgb is None:
        rgb, _ = synth_rgb(seed, size)
    data = png_bytes(rgb)
    digest = hashlib.sha256(data + secrets.token_bytes(8)).hexdigest()
    image = Image(center_id=session.center_id, session=session, original_sha256=digest,
                  stored_sha256=hashlib.sha256(data).hexdigest(), original_format="png",
                  width=rgb.shape[1], height=rgb.shape[0], um_per_px=session.um_per_px,
                  um_per_px_source=UmPerPxSource.SESSION if session.um_per_px else UmPerPxSource.NONE,
                  created_by=session.created_by)
    image.file.save("field.png", ContentFile(data), save=False)
    if display:
        image.display_file.save("display.png", ContentFile(data), save=False)
    image.save()
    return image


def register_tiny_model(tmp_dir: Path, *, center=None, activate: bool = True, **kw):
    """Build the tiny bundle in ``tmp_dir`` and register it (site-wide by default)."""
    from portal.mlmodels.services import model_register_bundle

    bundle = tiny_bundle(Path(tmp_dir) / "tiny_bundle", **kw)
    return model_register_bundle(path=bundle, center=center, user=None, activate=activate)


def make_model_version(*, center=None, name: str = "fake", version: str | None = None, activate: bool = False):
    """A registry row without files (for access and API tests that never run the model)."""
    from portal.mlmodels.models import ActiveModel, ModelVersion

    model_version = ModelVersion.objects.create(
        name=name, version=version or secrets.token_hex(4), center=center,
        class_names=["round_spermatid", "spermatocyte"], weights_sha256="0" * 64, bundle_path="/nonexistent")
    if activate:
        ActiveModel.objects.update_or_create(center=center, defaults={"model_version": model_version})
    return model_version


def build_job_world(cast, center_cast) -> dict:
    """For the access matrix: a session with an image, an active center model, a queued job and a
    complete result set with one detection, all of ``center_cast``'s center. No files are read."""
    from portal.jobs.models import InferenceJob, JobImage
    from portal.results.models import Detection, ResultSet, ResultSetStatus

    session = make_session(center_cast)
    image = make_image(session, rgb=np.zeros((16, 16, 3), np.uint8))
    model_version = make_model_version(center=center_cast.center, activate=True)
    spare_model = make_model_version(center=center_cast.center)
    job = InferenceJob.objects.create(center=center_cast.center, session=session, model_version=model_version,
                                      images_total=1)
    JobImage.objects.create(job=job, image=image)
    result_set = ResultSet.objects.create(center=center_cast.center, image=image, job=job,
                                          model_version=model_version, status=ResultSetStatus.COMPLETE)
    Detection.objects.create(result_set=result_set, index=0, class_name="round_spermatid", score=0.9,
                             x1=1, y1=1, x2=5, y2=5, mask_rle={"size": [16, 16], "counts": ""}, area_px=16,
                             centroid_x_px=3, centroid_y_px=3)
    # a second session with no job yet, for "start an analysis"
    fresh = make_session(center_cast)
    make_image(fresh, rgb=np.zeros((16, 16, 3), np.uint8))
    return {"session": session, "image": image, "model": model_version, "spare_model": spare_model, "job": job,
            "result_set": result_set, "fresh_session": fresh, "center": center_cast.center}


def stored_bundle_file_rewrite(model_version, file_name: str, rewrite) -> None:
    """Replace the stored bundle file ``file_name`` of ``model_version`` by ``rewrite(old bytes)``, through
    the storage API (to simulate a file corrupted or swapped in storage)."""
    from django.core.files.storage import default_storage

    name = f"{model_version.bundle_path}/{file_name}"
    with default_storage.open(name, "rb") as handle:
        data = handle.read()
    default_storage.delete(name)
    assert default_storage.save(name, ContentFile(rewrite(data))) == name
