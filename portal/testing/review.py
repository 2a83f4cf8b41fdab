"""Test support for the review app: images with a display PNG and model detections, made through the ORM."""
from __future__ import annotations

import hashlib
import io
import math
import uuid
from datetime import date

import numpy as np
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image as PILImage
from PIL import ImageDraw
from pycocotools import mask as mask_utils

from portal.imaging.models import Image, ImageSession, ImageStatus, Patient
from portal.results.models import Detection, ResultSet, ResultSetStatus, ResultSource
from portal.review.classes import CLASS_NAMES


def _png(width: int, height: int, cells: list[tuple[float, float, float]]) -> bytes:
    img = PILImage.new("L", (width, height), 150)
    draw = ImageDraw.Draw(img)
    for cx, cy, r in cells:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=95, outline=60)
        draw.ellipse([cx - r / 2, cy - r / 2, cx + r / 2, cy + r / 2], fill=70)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def make_session(center_cast, *, patient_code: str | None = None, acquisition_date: date | None = None,
                 **fields) -> ImageSession:
    uploader = center_cast.uploader
    patient = Patient.objects.create(
        center=center_cast.center, code=patient_code or f"{center_cast.center.code}-{uuid.uuid4().hex[:8].upper()}",
        created_by=uploader,
    )
    return ImageSession.objects.create(
        center=center_cast.center, patient=patient, acquisition_date=acquisition_date or date(2024, 5, 17),
        created_by=uploader, **fields,
    )


def circle_cells(n: int, *, width: int, height: int, radius: float, seed: int = 0) -> list[tuple[float, float, float]]:
    """``n`` circle centres on a jittered grid (non-overlapping for sensible sizes)."""
    rng = np.random.default_rng(seed)
    cols = max(1, int(math.ceil(math.sqrt(n * width / height))))
    rows = max(1, int(math.ceil(n / cols)))
    sx, sy = width / cols, height / rows
    out = []
    for k in range(n):
        i, j = k % cols, k // cols
        cx = (i + 0.5) * sx + rng.uniform(-0.15, 0.15) * sx
        cy = (j + 0.5) * sy + rng.uniform(-0.15, 0.15) * sy
        out.append((float(cx), float(cy), float(radius)))
    return out


def make_image(center_cast, *, session: ImageSession | None = None, width: int = 400, height: int = 300,
               um_per_px: float | None = 0.2, cells: list | None = None, stage: tuple[float, float] | None = None,
               status: str = ImageStatus.ANALYZED) -> Image:
    session = session or make_session(center_cast)
    png = _png(width, height, cells or [])
    image = Image(
        center=center_cast.center, session=session, original_sha256=uuid.uuid4().hex + uuid.uuid4().hex,
        stored_sha256=hashlib.sha256(png).hexdigest(), original_format="png", width=width, height=height,
        um_per_px=um_per_px,
        stage_x_um=stage[0] if stage else None, stage_y_um=stage[1] if stage else None,
        status=status, created_by=center_cast.uploader,
    )
    image.file.save("x.png", ContentFile(png), save=False)
    image.display_file.save("x.png", ContentFile(png), save=False)
    image.save()
    return image


def circle_detection_fields(cx: float, cy: float, r: float, *, width: int, height: int,
                            um_per_px: float | None) -> dict:
    """Detection fields of a circular mask (rasterised from a 32-gon, so large images stay fast)."""
    poly = [v for k in range(32) for v in (cx + r * math.cos(2 * math.pi * k / 32), cy + r * math.sin(2 * math.pi * k / 32))]
    rle = mask_utils.merge(mask_utils.frPyObjects([poly], height, width))
    area = float(mask_utils.area(rle))
    x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
    fields = {
        "mask_rle": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
        "x1": x, "y1": y, "x2": x + w, "y2": y + h,
        "area_px": area, "centroid_x_px": float(cx), "centroid_y_px": float(cy),
    }
    if um_per_px:
        fields.update(area_um2=area * um_per_px ** 2, diameter_um=2 * math.sqrt(area / math.pi) * um_per_px,
                      centroid_x_um=cx * um_per_px, centroid_y_um=cy * um_per_px)
    return fields


def make_result_set(image: Image, *, cells: list[tuple[float, float, float]], classes: list[str] | None = None,
                    scores: list[float] | None = None) -> ResultSet:
    """A complete model result set with one circular detection per cell, ordered by score."""
    rs = ResultSet.objects.create(center=image.center, image=image, source=ResultSource.MODEL,
                                  status=ResultSetStatus.COMPLETE, completed_at=timezone.now())
    n = len(cells)
    classes = classes or [CLASS_NAMES[k % len(CLASS_NAMES)] for k in range(n)]
    scores = scores or [round(0.99 - 0.9 * k / max(n - 1, 1), 4) for k in range(n)]
    order = sorted(range(n), key=lambda k: -scores[k])
    rows = []
    for index, k in enumerate(order):
        cx, cy, r = cells[k]
        rows.append(Detection(
            result_set=rs, index=index, source=ResultSource.MODEL, class_name=classes[k], score=scores[k],
            **circle_detection_fields(cx, cy, r, width=image.width, height=image.height, um_per_px=image.um_per_px),
        ))
    Detection.objects.bulk_create(rows)
    return rs


def make_reviewable_image(center_cast, *, n: int = 6, session: ImageSession | None = None, **kw) -> Image:
    """An analyzed image with ``n`` circular model detections (classes cycle through the six)."""
    width, height = kw.pop("width", 400), kw.pop("height", 300)
    um = kw.pop("um_per_px", 0.2)
    cells = circle_cells(n, width=width, height=height, radius=kw.pop("radius", 3.5 / (um or 0.2)))
    image = make_image(center_cast, session=session, width=width, height=height, um_per_px=um, cells=cells, **kw)
    make_result_set(image, cells=cells)
    return image
