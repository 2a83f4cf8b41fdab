"""Exports of reviewed sessions: COCO datasets for training and pick lists for the microscope.

Each export states the rule that selected its instances (``portal.review.lib.finalcall``).
"""
from __future__ import annotations

from django.utils import timezone

from portal.imaging.models import Image, ImageSession
from portal.results.models import Detection, ResultSource
from portal.review.classes import CLASS_COLORS, CLASS_NAMES, TARGET_CLASS, coco_categories, hex_to_rgb
from portal.review.lib.finalcall import FINAL_CALL_RULE, FINAL_CALL_RULE_ID, FINAL_MASK_RULE
from portal.review.lib.formats import micromanager_position_list, qupath_points, rows_to_csv
from portal.review.lib.stage import STAGE_CONVENTION, cell_stage_position
from portal.review.lib.travel import TravelPlan, travel_plan
from portal.review.models import PickList
from portal.review.selectors import (
    REVIEW_THRESHOLD_DEFAULT,
    calls_for_result_sets,
    current_result_set_ids,
    final_masks_for,
    reviewed_image_ids,
)

COCO_SELECTION = ("accepted (as judged or with the corrected class) and drawn instances whose final call is "
                  "accept; rejected, uncertain, disputed and undecided instances are left out")


EXPORTED_BIT_DEPTH = 8
PIXEL_NOTE = ("pixels are the 8-bit display rendering of each image (file_name); an image whose original has "
              "more bits (bit_depth, e.g. 16) was windowed to 8 bits; the portal keeps the original")


def detection_geometry(det: Detection, correction=None) -> tuple[list | dict, int, list]:
    """A detection's final COCO ``(segmentation, area, bbox)``: the reviewer's correction that
    ``FINAL_MASK_RULE`` picked (from ``final_masks_for``) where there is one, else a drawn instance's
    polygon or a model instance's RLE."""
    if correction is not None:
        c = correction
        return ({"size": list(c.mask_rle["size"]), "counts": c.mask_rle["counts"]}, c.area_px,
                [c.x1, c.y1, c.x2 - c.x1, c.y2 - c.y1])
    bbox = [det.x1, det.y1, det.x2 - det.x1, det.y2 - det.y1]
    if det.source == ResultSource.MANUAL and det.polygon:
        return [[v for p in det.polygon for v in p]], det.area_px, bbox
    return {"size": list(det.mask_rle["size"]), "counts": det.mask_rle["counts"]}, det.area_px, bbox


def coco_export(*, sessions: list[ImageSession], threshold: float = REVIEW_THRESHOLD_DEFAULT,
                include_unreviewed: bool = False) -> dict:
    """A standard COCO instances dict of the sessions' finally accepted instances.

    Only reviewed images by default: those whose every cell to review (at ``threshold``) has a decision,
    since an image nobody reviewed would teach "no cells here"; ``include_unreviewed`` exports all.
    Categories are ids 1..6 in ``labels.md`` order; each image carries ``um_per_px``, ``patient_id``
    (the pseudonym, so dataset splits can keep a patient's images together), its original ``bit_depth``
    and ``exported_bit_depth`` (8: ``file_name`` is ``<image uuid>.png``, the 8-bit display image the zip
    export writes). Drawn instances keep their polygon, model instances their RLE.
    """
    category_id = {n: k + 1 for k, n in enumerate(CLASS_NAMES)}
    all_images = list(Image.objects.filter(session__in=sessions).select_related("session__patient")
                      .order_by("session__acquisition_date", "session_id", "created_at", "page_index"))
    rs_ids = current_result_set_ids(all_images)
    calls = calls_for_result_sets(rs_ids)
    reviewed = reviewed_image_ids(calls, threshold)
    images = all_images if include_unreviewed else [i for i in all_images if i.pk in reviewed]
    keep = {d for d, c in calls.items() if c.call is not None and c.call.verdict == "accept"}
    by_image: dict = {}
    for det in Detection.objects.filter(pk__in=keep).select_related("result_set").order_by("result_set_id", "index"):
        by_image.setdefault(det.result_set.image_id, []).append(det)
    finals = final_masks_for(keep)  # reviewers' corrected masks, where FINAL_MASK_RULE says so
    coco_images, annotations = [], []
    ann_id = 0
    for k, image in enumerate(images, start=1):
        coco_images.append({
            "id": k, "file_name": f"{image.pk}.png", "width": image.width, "height": image.height,
            "um_per_px": image.um_per_px, "patient_id": image.session.patient.code,
            "portal_image_id": str(image.pk), "portal_session_id": str(image.session_id),
            "bit_depth": image.bit_depth, "exported_bit_depth": EXPORTED_BIT_DEPTH,
            "reviewed": image.pk in reviewed,
        })
        for det in by_image.get(image.pk, []):
            call = calls[det.pk].call
            ann_id += 1
            fixed = finals.get(det.pk)
            segmentation, area, bbox = detection_geometry(det, fixed)
            annotations.append({
                "id": ann_id, "image_id": k, "category_id": category_id[call.class_name],
                "segmentation": segmentation, "area": area, "bbox": bbox, "iscrowd": 0,
                "mask_corrected": fixed is not None,
                "score": det.score, "source": det.source, "corrected": call.class_name != det.class_name,
                "model_class": det.class_name, "decided_by": call.decided_by, "portal_detection_id": str(det.pk),
            })
    return {
        "info": {
            "description": "spermatid-portal reviewed instances",
            "date_created": timezone.now().isoformat(),
            "selection_rule": FINAL_CALL_RULE, "selection_rule_id": FINAL_CALL_RULE_ID,
            "selection": COCO_SELECTION, "mask_rule": FINAL_MASK_RULE,
            "sessions": [str(s.pk) for s in sessions],
            "image_selection": "all" if include_unreviewed else "reviewed",
            "review_threshold": threshold,
            "images_left_out": len(all_images) - len(images),
            "pixel_data": PIXEL_NOTE,
            "images_reduced_to_8_bit": sum(1 for i in images if i.bit_depth > EXPORTED_BIT_DEPTH),
        },
        "licenses": [],
        "images": coco_images,
        "annotations": annotations,
        "categories": coco_categories(),
    }


# --- pick lists -------------------------------------------------------------------------------------------
PICK_CSV_HEADER = [
    "rank", "detection_id", "image_id", "image_position", "class_name", "score", "centroid_x_px", "centroid_y_px",
    "centroid_x_um", "centroid_y_um", "diameter_um", "stage_x_um", "stage_y_um", "source", "decided_by", "rule_id",
]


def pick_list_rows(pick_list: PickList) -> list[dict]:
    """The items with their image, its place in the session and the computed stage position (or None)."""
    session = pick_list.session
    images = list(Image.objects.filter(session=session).order_by("created_at", "page_index", "id"))
    position = {i.pk: k + 1 for k, i in enumerate(images)}
    by_id = {i.pk: i for i in images}
    rows = []
    for item in pick_list.items.select_related("detection", "detection__result_set").order_by("rank"):
        image = by_id[item.detection.result_set.image_id]
        stage = None
        if image.stage_x_um is not None and image.stage_y_um is not None and image.um_per_px:
            stage = cell_stage_position(
                centroid_x_px=item.centroid_x_px, centroid_y_px=item.centroid_y_px, width=image.width,
                height=image.height, um_per_px=image.um_per_px, stage_x_um=image.stage_x_um,
                stage_y_um=image.stage_y_um, flip_x=session.stage_flip_x, flip_y=session.stage_flip_y,
                rotation=session.stage_rotation)
        rows.append({"item": item, "detection": item.detection, "image": image,
                     "image_position": position[image.pk], "stage": stage})
    return rows


def travel_ordered(rows: list[dict]) -> tuple[list[dict], TravelPlan | None]:
    """The rows in a short stage travel order (``lib.travel``) when every row has a stage position;
    otherwise the rows unchanged (score order) and None."""
    if not rows or any(r["stage"] is None for r in rows):
        return rows, None
    plan = travel_plan([r["stage"] for r in rows])
    ordered = [rows[k] for k in plan.order]
    for stop, row in enumerate(ordered, start=1):
        row["stop"] = stop
    return ordered, plan


def pick_list_csv(pick_list: PickList, rows: list[dict], *, file_names: dict | None = None) -> str:
    """The pick list as CSV, by rank. The clinic's file names are a column only when the caller asked for
    them (``file_names``: image id -> name, from ``imaging.selectors.display_names_for``)."""
    header = PICK_CSV_HEADER + (["original_file_name"] if file_names is not None else [])
    return rows_to_csv(header, [
        [r["item"].rank, r["detection"].pk, r["image"].pk, r["image_position"], pick_list.class_name,
         _round(r["item"].score, 4), _round(r["item"].centroid_x_px, 2), _round(r["item"].centroid_y_px, 2),
         _round(r["item"].centroid_x_um, 3), _round(r["item"].centroid_y_um, 3), _round(r["item"].diameter_um, 2),
         r["stage"][0] if r["stage"] else None, r["stage"][1] if r["stage"] else None,
         r["detection"].source, r["item"].decided_by, FINAL_CALL_RULE_ID,
         *([file_names.get(r["image"].pk, "")] if file_names is not None else [])]
        for r in rows
    ])


def pick_list_geojson(pick_list: PickList, rows: list[dict], image: Image) -> dict:
    """QuPath GeoJSON points of one image's picks (pixels, top-left origin)."""
    points = [{
        "id": r["detection"].pk, "x_px": r["item"].centroid_x_px, "y_px": r["item"].centroid_y_px,
        "name": f"#{r['item'].rank}", "class_name": pick_list.class_name,
        "color_rgb": hex_to_rgb(CLASS_COLORS.get(pick_list.class_name, CLASS_COLORS[TARGET_CLASS])),
        "measurements": {k: v for k, v in (("score", r["item"].score), ("diameter_um", r["item"].diameter_um),
                                           ("rank", r["item"].rank)) if v is not None},
    } for r in rows if r["image"].pk == image.pk]
    return qupath_points(points, properties={
        "pick_list": str(pick_list.pk), "image": str(image.pk), "rule": pick_list.rule,
        "rule_id": FINAL_CALL_RULE_ID, "coordinates": "pixels, origin at the image's top-left corner",
    })


def pick_list_positions(pick_list: PickList, rows: list[dict], *, xy_stage: str) -> dict:
    """Micro-Manager 2.0 ``.pos`` of the picks, in the order given (the caller passes the travel order).
    Refused by the caller when an image lacks a stage position."""
    return micromanager_position_list([
        {"label": f"hRS-{r['item'].rank:03d}", "x_um": r["stage"][0], "y_um": r["stage"][1],
         "properties": {"detection_id": str(r["detection"].pk), "image_id": str(r["image"].pk),
                        "score": "" if r["item"].score is None else f"{r['item'].score:.4f}",
                        "rule_id": FINAL_CALL_RULE_ID, "stage_convention": STAGE_CONVENTION}}
        for r in rows
    ], xy_stage=xy_stage)


def _round(v, n):
    return None if v is None else round(v, n)
