"""Opening a study: freeze the model output (hash) and build the blinded, per-validator shuffled cell lists."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from django.db import transaction
from django.utils.translation import gettext as _

from portal.core.errors import DomainError
from portal.imaging import services as imaging_services
from portal.validation import crops
from portal.validation.lib import matching
from portal.validation.lib.assignment import assign_balanced, seeded_shuffle
from portal.validation.models import (
    Assignment,
    Cell,
    Design,
    Study,
    StudyStatus,
    StudyValidator,
)
from portal.validation.services._common import (
    PICK_MATCH_FALLBACK_PX,
    PICK_MATCH_UM,
    TARGET_CLASS,
    _require_admin,
    _require_status,
    _study_transition,
)
from portal.validation.services.design import _check_not_reviewer, study_fields_ensure


def _model_result_set(study: Study, image):
    from portal.results.models import ResultSet, ResultSetStatus, ResultSource

    return (
        ResultSet.objects.filter(
            image=image, model_version=study.model_version, source=ResultSource.MODEL,
            status=ResultSetStatus.COMPLETE,
        )
        .order_by("-completed_at", "-created_at")
        .first()
    )


def detection_fingerprint(detection) -> list:
    """What the frozen hash covers for one detection."""
    mask = hashlib.sha256(json.dumps(detection.mask_rle, sort_keys=True).encode()).hexdigest()
    return [
        str(detection.pk), str(detection.result_set_id), detection.index, detection.class_name, detection.score,
        detection.x1, detection.y1, detection.x2, detection.y2, detection.centroid_x_px, detection.centroid_y_px, mask,
    ]


def model_output_hash(study: Study, result_set_ids: Iterable) -> str:
    """SHA-256 over the model version, thresholds and every detection of the frozen result sets."""
    from portal.results.models import Detection

    detections = Detection.objects.filter(result_set_id__in=list(result_set_ids)).order_by("id")
    return matching.canonical_sha256({
        "model_version": str(study.model_version_id),
        "weights_sha256": study.model_version.weights_sha256,
        "score_threshold": study.score_threshold,
        "candidate_threshold": study.candidate_threshold,
        "result_sets": sorted(str(r) for r in result_set_ids),
        "detections": [detection_fingerprint(d) for d in detections],
    })


@transaction.atomic
def study_open(*, actor, study: Study, request=None) -> Study:
    """Freeze the model output and build the blinded, per-validator shuffled cell lists."""
    study = Study.objects.select_for_update().get(pk=study.pk)
    _require_admin(actor, study)
    _require_status(study, StudyStatus.DRAFT, action="open the study")
    validators = list(study.validators.select_related("user"))
    if not validators:
        raise DomainError(_("Add at least one validator first."))
    if len(validators) < study.validators_per_cell:
        raise DomainError(
            _('The study needs %(validators_per_cell)s validators per cell but has %(len)s.') % {"validators_per_cell": study.validators_per_cell, "len": len(validators)},
            extra={"validators": len(validators), "validators_per_cell": study.validators_per_cell},
        )
    for membership in validators:
        _check_not_reviewer(study, membership.user)
    fields = sorted(study_fields_ensure(study=study), key=lambda f: str(f.image_id))
    missing_results, missing_display = [], []
    frozen_sets = {}
    for field in fields:
        result_set = _model_result_set(study, field.image)
        if result_set is None:
            missing_results.append(field.public_id)
        if not field.image.display_file:
            missing_display.append(field.public_id)
        frozen_sets[field.pk] = result_set
    if missing_results or missing_display:
        raise DomainError(
            _("Every image needs a complete result of the study's model version and a display rendering."),
            extra={"images_without_results": len(missing_results), "images_without_display": len(missing_display)},
        )

    candidates = []  # (field, detection, positive)
    for field in fields:
        for det in frozen_sets[field.pk].detections.order_by("index"):
            positive = matching.is_model_positive(det.class_name, det.score, target_class=TARGET_CLASS,
                                         score_threshold=study.score_threshold)
            if matching.is_candidate(design=study.design, score=det.score, positive=positive,
                            candidate_threshold=study.candidate_threshold):
                candidates.append((field, det, positive))
    subsampled_from = None
    keep = (matching.subsample_indices(len(candidates), study.subsample_size, study.subsample_seed)
            if study.design == Design.WHOLE_FIELD else None)
    if keep is not None:
        subsampled_from = len(candidates)
        candidates = [candidates[i] for i in keep]
    cells: list[Cell] = []
    for field, det, positive in candidates:
        cells.append(Cell(
            study=study, field=field, center_id=field.image.center_id,
            x_px=det.centroid_x_px, y_px=det.centroid_y_px, from_model=True, detection=det,
            model_class=det.class_name, model_score=det.score, model_positive=positive,
        ))
    if study.design == Design.PICKED_CELLS:
        by_image = {f.image_id: f for f in fields}
        for pick in study.picks.all():
            field = by_image.get(pick.image_id)
            if field is None:
                continue
            limit = matching.distance_limit_px(field.image.um_per_px, PICK_MATCH_UM, PICK_MATCH_FALLBACK_PX)
            model_cells = [c for c in cells if c.field_id == field.pk and c.from_model]
            index = matching.first_within([(c.x_px, c.y_px) for c in model_cells], pick.x_px, pick.y_px, limit)
            same = model_cells[index] if index is not None else None
            if same is not None:
                same.from_embryologist = True
                continue
            cells.append(Cell(study=study, field=field, center_id=field.image.center_id, x_px=pick.x_px,
                              y_px=pick.y_px, from_embryologist=True, added_by=pick.picked_by))
    if not cells:
        raise DomainError(_("The study has no cells to score (no model picks, picks or candidates)."))

    _render_crops(study, cells)
    Cell.objects.bulk_create(cells)
    _assign(study, validators, list(study.cells.all()))
    study.frozen = {
        "result_sets": sorted(str(r.pk) for r in frozen_sets.values()),
        "cells": len(cells),
        "subsampled_from": subsampled_from,
    }
    study.model_output_sha256 = model_output_hash(study, [r.pk for r in frozen_sets.values()])
    # The cells' positions and sizes rest on the sessions' measurements: fix them from now on.
    imaging_services.session_freeze(session_ids=study.sessions.values_list("id", flat=True),
                                    reason=f"validation study {study.name!r} opened", actor=actor, request=request)
    _study_transition(actor=actor, study=study, status=StudyStatus.OPEN, stamp="opened", request=request,
                      after={"model_output_sha256": study.model_output_sha256, "cells": len(cells),
                             "subsampled_from": subsampled_from})
    return study


def _render_crops(study: Study, cells: list[Cell]) -> None:
    sources: dict = {}
    for cell in cells:
        image = cell.field.image
        if image.pk not in sources:
            sources[image.pk] = crops.load_display(image)
        side = crops.window_px(um_per_px=image.um_per_px, crop_um=study.crop_um)
        cell.crop_png = crops.render_crop(sources[image.pk], x_px=cell.x_px, y_px=cell.y_px, side_px=side)


def _assign(study: Study, validators: list[StudyValidator], cells: list[Cell]) -> None:
    """Give each cell to ``validators_per_cell`` validators (balanced, seeded), then shuffle each list."""
    lists = assign_balanced(cells=sorted(cells, key=lambda c: c.public_id), validators=[v.pk for v in validators],
                            per_cell=study.validators_per_cell, seed=study.assignment_seed)
    rows = []
    for membership in validators:
        own = seeded_shuffle(sorted(lists[membership.pk], key=lambda c: c.public_id), membership.order_seed)
        rows += [Assignment(validator=membership, cell=cell, position=i) for i, cell in enumerate(own)]
    Assignment.objects.bulk_create(rows)
