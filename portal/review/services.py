"""Writes of the review app: decisions, adjudications, drawn instances and pick lists.

Every write validates, runs in a transaction and records an audit event with the state before and after.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from portal.audit.services import audit_record
from portal.core.errors import Conflict, DomainError
from portal.core.media import media_open_local, media_open_stream
from portal.imaging.models import Image, ImageSession
from portal.results.models import Detection, ResultSet, ResultSetStatus, ResultSource
from portal.review.classes import CLASS_NAMES, TARGET_CLASS
from portal.review.lib.finalcall import FINAL_CALL_RULE
from portal.review.lib.geometry import (
    GeometryError,
    clean_polygon,
    decode_rle,
    mask_from_crop,
    mask_from_polygon,
    measure_mask,
    measure_polygon,
    split_by_line,
)
from portal.review.models import (
    Adjudication,
    CorrectionOperation,
    Decision,
    ImageReviewDone,
    MaskCorrection,
    PickList,
    PickListItem,
    Verdict,
)
from portal.review.selectors import (
    calls_for_result_sets,
    current_correction,
    current_result_set_ids,
    current_result_sets,
    final_masks_for,
)


def _check_verdict(verdict: str, class_name: str) -> None:
    if verdict not in Verdict.values:
        raise DomainError(_('Unknown verdict %(verdict)s.') % {"verdict": repr(verdict)}, extra={"allowed": list(Verdict.values)})
    if class_name and class_name not in CLASS_NAMES:
        raise DomainError(_('Unknown class %(class_name)s.') % {"class_name": repr(class_name)}, extra={"allowed": list(CLASS_NAMES)})


def _check_current(detection: Detection) -> None:
    """Decisions are taken only on what the viewer shows: the image's current result sets."""
    if detection.result_set_id not in current_result_set_ids([detection.result_set.image]):
        raise Conflict(_("This detection belongs to a superseded result set; reload the image."),
                       extra={"result_set": str(detection.result_set_id)})


def _snapshot(obj) -> dict | None:
    if obj is None:
        return None
    return {"verdict": obj.verdict, "class_name": obj.class_name}


def decision_set(*, user, detection: Detection, verdict: str, class_name: str = "", request=None) -> Decision:
    """Create or replace ``user``'s own decision on ``detection`` (other reviewers' rows are untouched)."""
    _check_verdict(verdict, class_name)
    if class_name == detection.class_name:
        class_name = ""
    _check_current(detection)
    with transaction.atomic():
        decision = Decision.objects.select_for_update().filter(detection=detection, reviewer=user).first()
        before = _snapshot(decision)
        if decision is None:
            decision = Decision(center_id=detection.result_set.center_id, detection=detection,
                                result_set_id=detection.result_set_id, reviewer=user)
        decision.verdict = verdict
        decision.class_name = class_name
        decision.full_clean(validate_unique=False)
        decision.save()
        audit_record(actor=user, action="review.decision.update" if before else "review.decision.create",
                     center=decision.center_id, obj=decision, before=before,
                     after={**_snapshot(decision), "detection": str(detection.pk),
                            "result_set": str(detection.result_set_id)},
                     request=request)
    return decision


def decision_clear(*, user, detection: Detection, request=None) -> None:
    """Remove ``user``'s decision on ``detection`` (undo back to undecided). No decision: nothing happens."""
    with transaction.atomic():
        decision = Decision.objects.select_for_update().filter(detection=detection, reviewer=user).first()
        if decision is None:
            return
        before = {**_snapshot(decision), "detection": str(detection.pk)}
        audit_record(actor=user, action="review.decision.delete", center=decision.center_id, obj=decision,
                     before=before, after=None, request=request)
        decision.delete()


def adjudication_set(*, user, detection: Detection, verdict: str, class_name: str = "", note: str = "",
                     request=None) -> Adjudication:
    """The center admin's final call on ``detection`` (replaces an earlier adjudication)."""
    _check_verdict(verdict, class_name)
    if class_name == detection.class_name:
        class_name = ""
    _check_current(detection)
    with transaction.atomic():
        adj = Adjudication.objects.select_for_update().filter(detection=detection).first()
        before = _snapshot(adj)
        if adj is None:
            adj = Adjudication(center_id=detection.result_set.center_id, detection=detection,
                               result_set_id=detection.result_set_id)
        adj.adjudicator = user
        adj.verdict, adj.class_name, adj.note = verdict, class_name, note or ""
        adj.full_clean(validate_unique=False)
        adj.save()
        audit_record(actor=user, action="review.adjudication.update" if before else "review.adjudication.create",
                     center=adj.center_id, obj=adj, before=before,
                     after={**_snapshot(adj), "note": adj.note, "detection": str(detection.pk)}, request=request)
    return adj


def adjudication_clear(*, user, detection: Detection, request=None) -> None:
    with transaction.atomic():
        adj = Adjudication.objects.select_for_update().filter(detection=detection).first()
        if adj is None:
            return
        audit_record(actor=user, action="review.adjudication.delete", center=adj.center_id, obj=adj,
                     before={**_snapshot(adj), "detection": str(detection.pk)}, after=None, request=request)
        adj.delete()


# --- drawn instances -----------------------------------------------------------------------------------
def _measured(polygon, image: Image):
    try:
        points = clean_polygon(polygon, width=image.width, height=image.height)
        return points, measure_polygon(points, width=image.width, height=image.height, um_per_px=image.um_per_px)
    except GeometryError as exc:
        raise DomainError(str(exc), extra={"field": "polygon"})


def _apply_measures(det: Detection, points, m) -> None:
    det.polygon = points
    det.mask_rle = m.rle
    det.x1, det.y1, det.x2, det.y2 = m.box
    det.area_px, det.area_um2, det.diameter_um = m.area_px, m.area_um2, m.diameter_um
    det.centroid_x_px, det.centroid_y_px = m.centroid_x_px, m.centroid_y_px
    det.centroid_x_um, det.centroid_y_um = m.centroid_x_um, m.centroid_y_um


def _det_snapshot(det: Detection) -> dict:
    return {"class_name": det.class_name, "polygon": det.polygon, "area_px": det.area_px,
            "centroid_px": [det.centroid_x_px, det.centroid_y_px]}


def manual_instance_create(*, user, image: Image, polygon, class_name: str = TARGET_CLASS,
                           request=None) -> Detection:
    """Store a drawn instance in the image's manual result set, accepted by the reviewer who drew it."""
    if class_name not in CLASS_NAMES:
        raise DomainError(_('Unknown class %(class_name)s.') % {"class_name": repr(class_name)}, extra={"allowed": list(CLASS_NAMES)})
    points, m = _measured(polygon, image)
    with transaction.atomic():
        Image.objects.select_for_update().filter(pk=image.pk).first()  # one manual set per image
        rs = current_result_sets([image])[image.pk]["manual"]
        if rs is None:
            from django.utils import timezone

            rs = ResultSet.objects.create(center_id=image.center_id, image=image, source=ResultSource.MANUAL,
                                          status=ResultSetStatus.COMPLETE, completed_at=timezone.now(),
                                          created_by=user, parameters={"kind": "reviewer annotations"})
            audit_record(actor=user, action="results.resultset.create", center=image.center_id, obj=rs,
                         after={"image": str(image.pk), "source": "manual"}, request=request)
        last_index = rs.detections.aggregate(m=Max("index"))["m"]
        next_index = 0 if last_index is None else last_index + 1
        det = Detection(result_set=rs, index=next_index, source=ResultSource.MANUAL, class_name=class_name,
                        score=None, created_by=user)
        _apply_measures(det, points, m)
        det.full_clean(validate_unique=False)
        det.save()
        audit_record(actor=user, action="review.instance.create", center=image.center_id, obj=det,
                     after={**_det_snapshot(det), "image": str(image.pk)}, request=request)
        decision = Decision.objects.create(center_id=image.center_id, detection=det, result_set=rs,
                                           reviewer=user, verdict=Verdict.ACCEPT)
        audit_record(actor=user, action="review.decision.create", center=image.center_id, obj=decision,
                     after={"verdict": "accept", "class_name": "", "detection": str(det.pk), "drawn": True},
                     request=request)
    return det


def _check_editable(user, det: Detection) -> None:
    from portal.centers.access import user_may
    from portal.centers.policy import Action

    if det.source != ResultSource.MANUAL:
        raise Conflict(_("Only drawn instances can be edited or deleted; judge model detections instead."))
    if det.created_by_id != user.pk and not user_may(user, det.result_set.center_id, Action.REVIEW_ADJUDICATE):
        raise DomainError(_("Only the reviewer who drew this instance or a center admin may change it."),
                          status_code=403)


def manual_instance_update(*, user, detection: Detection, polygon=None, class_name: str | None = None,
                           request=None) -> Detection:
    _check_editable(user, detection)
    if class_name is not None and class_name not in CLASS_NAMES:
        raise DomainError(_('Unknown class %(class_name)s.') % {"class_name": repr(class_name)}, extra={"allowed": list(CLASS_NAMES)})
    image = detection.result_set.image
    with transaction.atomic():
        det = Detection.objects.select_for_update().get(pk=detection.pk)
        before = _det_snapshot(det)
        if polygon is not None:
            points, m = _measured(polygon, image)
            _apply_measures(det, points, m)
        if class_name is not None:
            det.class_name = class_name
        det.full_clean(validate_unique=False)
        det.save()
        audit_record(actor=user, action="review.instance.update", center=image.center_id, obj=det,
                     before=before, after=_det_snapshot(det), request=request)
    return det


def manual_instance_delete(*, user, detection: Detection, request=None) -> None:
    _check_editable(user, detection)
    if PickListItem.objects.filter(detection=detection).exists():
        raise Conflict(_("This instance is on a pick list and cannot be deleted; reject it instead."))
    with transaction.atomic():
        audit_record(actor=user, action="review.instance.delete", center=detection.result_set.center_id,
                     obj=detection, before=_det_snapshot(detection), after=None, request=request)
        detection.delete()  # its decisions and adjudication go with it


# --- pick lists ----------------------------------------------------------------------------------------
def pick_list_create(*, user, session: ImageSession, class_name: str = TARGET_CLASS, request=None) -> PickList:
    """Freeze the session's finally accepted cells of ``class_name``, best score first (drawn cells last)."""
    images = list(Image.objects.filter(session=session))
    rs_ids = current_result_set_ids(images)
    calls = calls_for_result_sets(rs_ids)
    chosen_ids = [c.detection_id for c in calls.values()
                  if c.call is not None and c.call.verdict == "accept" and c.call.class_name == class_name]
    if not chosen_ids:
        raise Conflict(_('No finally accepted %(class_name)s in this session yet.') % {"class_name": class_name}, extra={"rule": FINAL_CALL_RULE})
    dets = list(Detection.objects.filter(pk__in=chosen_ids))
    finals = final_masks_for(chosen_ids)  # a reviewer's corrected mask, where FINAL_MASK_RULE says so
    for det in dets:
        if det.pk in finals:
            c = finals[det.pk]
            det.centroid_x_px, det.centroid_y_px = c.centroid_x_px, c.centroid_y_px
            det.centroid_x_um, det.centroid_y_um, det.diameter_um = c.centroid_x_um, c.centroid_y_um, c.diameter_um
    dets.sort(key=lambda d: (d.score is None, -(d.score or 0.0), str(d.result_set_id), d.index))
    with transaction.atomic():
        pick_list = PickList(center_id=session.center_id, session=session, class_name=class_name,
                             rule=FINAL_CALL_RULE, created_by=user)
        pick_list.full_clean()
        pick_list.save()
        PickListItem.objects.bulk_create([
            PickListItem(pick_list=pick_list, rank=k + 1, detection=d, decided_by=calls[d.pk].call.decided_by,
                         score=d.score, centroid_x_px=d.centroid_x_px, centroid_y_px=d.centroid_y_px,
                         centroid_x_um=d.centroid_x_um, centroid_y_um=d.centroid_y_um, diameter_um=d.diameter_um)
            for k, d in enumerate(dets)
        ])
        audit_record(actor=user, action="review.picklist.create", center=session.center_id, obj=pick_list,
                     after={"session": str(session.pk), "items": len(dets), "class_name": class_name,
                            "rule": FINAL_CALL_RULE}, request=request)
    return pick_list


# --- viewer preview --------------------------------------------------------------------------------------
PREVIEW_PX = 2048


def image_preview_ensure(*, image: Image) -> bytes:
    """The viewer's first-paint JPEG (display image reduced to at most PREVIEW_PX on its long side).

    Made once and kept in storage under ``review-previews/``; safe to call right after upload so that the
    first opening of a large image is fast too. Raises DomainError when the image has no display file.
    """
    import io

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from PIL import Image as PILImage

    name = f"review-previews/{image.center_id}/{image.pk}-{PREVIEW_PX}.jpg"
    if default_storage.exists(name):
        with media_open_stream(name) as handle:
            return handle.read()  # a small JPEG
    if not image.display_file:
        raise DomainError(_("This image has no display version yet."), status_code=404)
    with media_open_local(image.display_file.name) as handle, PILImage.open(handle) as im:
        im = im.convert("RGB")
        factor = max(1, -(-max(im.size) // PREVIEW_PX))  # ceil
        if factor > 1:
            im = im.reduce(factor)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    default_storage.save(name, ContentFile(data))
    return data


# --- corrected masks -----------------------------------------------------------------------------------
def _correction_snapshot(c: MaskCorrection) -> dict:
    return {"operation": c.operation, "detection": str(c.detection_id), "area_px": c.area_px,
            "box": [c.x1, c.y1, c.x2, c.y2], "partner": str(c.partner_id) if c.partner_id else None}


def _full_mask(*, image: Image, polygon=None, mask=None):
    """The whole-image mask of an edit given as a polygon or as a crop RLE (exactly one of them)."""
    if (polygon is None) == (mask is None):
        raise DomainError(_("Give either a polygon or a mask."), extra={"field": "polygon"})
    try:
        if polygon is not None:
            points = clean_polygon(polygon, width=image.width, height=image.height)
            return points, mask_from_polygon(points, width=image.width, height=image.height)
        return None, mask_from_crop(mask, width=image.width, height=image.height)
    except GeometryError as exc:
        raise DomainError(str(exc), extra={"field": "polygon" if polygon is not None else "mask"})


def _store_correction(*, user, detection: Detection, full, polygon=None, operation=CorrectionOperation.EDIT,
                      partner: Detection | None = None, partner_decision_before=None, request=None) -> MaskCorrection:
    image = detection.result_set.image
    try:
        m = measure_mask(full, um_per_px=image.um_per_px)
    except GeometryError as exc:
        raise DomainError(str(exc), extra={"field": "mask"})
    before = current_correction(user=user, detection=detection)
    c = MaskCorrection(center_id=detection.result_set.center_id, detection=detection,
                       result_set_id=detection.result_set_id, reviewer=user, operation=operation,
                       mask_rle=m.rle, polygon=polygon, partner=partner,
                       partner_decision_before=partner_decision_before)
    c.x1, c.y1, c.x2, c.y2 = m.box
    c.area_px, c.area_um2, c.diameter_um = m.area_px, m.area_um2, m.diameter_um
    c.centroid_x_px, c.centroid_y_px = m.centroid_x_px, m.centroid_y_px
    c.centroid_x_um, c.centroid_y_um = m.centroid_x_um, m.centroid_y_um
    c.full_clean()
    c.save()
    audit_record(actor=user, action=f"review.correction.{operation}", center=c.center_id, obj=c,
                 before=_correction_snapshot(before) if before else None, after=_correction_snapshot(c),
                 request=request)
    return c


def _mask_seen_by(*, user, detection: Detection):
    """The mask of ``detection`` as ``user`` sees it: their current correction, else its own mask."""
    mine = current_correction(user=user, detection=detection)
    return decode_rle(mine.mask_rle if mine else detection.mask_rle)


def correction_set(*, user, detection: Detection, polygon=None, mask=None, request=None) -> MaskCorrection:
    """Store ``user``'s corrected mask of ``detection`` (a polygon or a crop RLE, validated: inside the
    image, non-empty, at most MAX_MASK_SIDE_PX on a side). Earlier corrections stay as history."""
    _check_current(detection)
    points, full = _full_mask(image=detection.result_set.image, polygon=polygon, mask=mask)
    with transaction.atomic():
        return _store_correction(user=user, detection=detection, full=full, polygon=points, request=request)


def correction_revert(*, user, detection: Detection, request=None) -> MaskCorrection | None:
    """Undo ``user``'s newest current correction of ``detection`` (the one before it, or the detection's
    own mask, comes back). A split also removes the cell it made; a merge gives the merged cell back its
    decision. Returns the correction now current, or None."""
    from django.utils import timezone

    with transaction.atomic():
        newest = (MaskCorrection.objects.select_for_update()
                  .filter(detection=detection, reviewer=user, reverted_at__isnull=True).order_by("-created_at").first())
        if newest is None:
            raise Conflict(_("There is no correction of yours to undo on this cell."))
        newest.reverted_at = timezone.now()
        newest.save(update_fields=["reverted_at"])
        audit_record(actor=user, action="review.correction.revert", center=newest.center_id, obj=newest,
                     before=_correction_snapshot(newest), after=None, request=request)
        partner = newest.partner
        if newest.operation == CorrectionOperation.SPLIT and partner is not None:
            manual_instance_delete(user=user, detection=partner, request=request)
        elif newest.operation == CorrectionOperation.MERGE and partner is not None:
            prev = newest.partner_decision_before
            if prev:
                decision_set(user=user, detection=partner, verdict=prev["verdict"], class_name=prev["class_name"],
                             request=request)
            else:
                decision_clear(user=user, detection=partner, request=request)
    return current_correction(user=user, detection=detection)


def correction_split(*, user, detection: Detection, line, request=None) -> tuple[MaskCorrection, Detection]:
    """Cut ``detection``'s mask (as ``user`` sees it) along ``line``: the detection keeps the larger part as
    ``user``'s correction; the other part becomes a new cell drawn by ``user`` (accepted, same class)."""
    _check_current(detection)
    image = detection.result_set.image
    full = _mask_seen_by(user=user, detection=detection)
    try:
        first, second = split_by_line(full, line)
    except GeometryError as exc:
        raise DomainError(str(exc), extra={"field": "line"})
    keep, other = (first, second) if first.sum() >= second.sum() else (second, first)
    mine = Decision.objects.filter(detection=detection, reviewer=user).first()
    class_name = (mine.class_name if mine and mine.class_name else detection.class_name)
    with transaction.atomic():
        new = manual_instance_create_from_mask(user=user, image=image, full=other, class_name=class_name,
                                               request=request)
        c = _store_correction(user=user, detection=detection, full=keep, operation=CorrectionOperation.SPLIT,
                              partner=new, request=request)
    return c, new


def correction_merge(*, user, detection: Detection, other: Detection, request=None) -> MaskCorrection:
    """Join ``other``'s mask into ``detection``'s (both as ``user`` sees them, same image): stored as
    ``user``'s correction of ``detection``; ``user``'s decision on ``other`` becomes reject (it is now part
    of ``detection``). Reverting the correction gives ``other`` its decision back."""
    if other.pk == detection.pk:
        raise DomainError(_("Choose two different cells to merge."), extra={"field": "other"})
    if other.result_set.image_id != detection.result_set.image_id:
        raise DomainError(_("Only cells of the same image can be merged."), extra={"field": "other"})
    _check_current(detection)
    _check_current(other)
    full = _mask_seen_by(user=user, detection=detection) | _mask_seen_by(user=user, detection=other)
    prev = Decision.objects.filter(detection=other, reviewer=user).first()
    with transaction.atomic():
        c = _store_correction(user=user, detection=detection, full=full, operation=CorrectionOperation.MERGE,
                              partner=other, partner_decision_before=_snapshot(prev), request=request)
        decision_set(user=user, detection=other, verdict=Verdict.REJECT, request=request)
    return c


def manual_instance_create_from_mask(*, user, image: Image, full, class_name: str, request=None) -> Detection:
    """A drawn cell given as a whole-image mask (the second part of a split), accepted by ``user``."""
    from portal.review.lib.geometry import rle_to_polygon_outline, simplify_polygon

    try:
        m = measure_mask(full, um_per_px=image.um_per_px)
    except GeometryError as exc:
        raise DomainError(str(exc), extra={"field": "mask"})
    outline = simplify_polygon(rle_to_polygon_outline(m.rle), tolerance=0.5)
    det = manual_instance_create(user=user, image=image, polygon=outline, class_name=class_name, request=request)
    # keep the exact mask (the outline is for display and COCO polygons)
    det.mask_rle = m.rle
    det.x1, det.y1, det.x2, det.y2 = m.box
    det.area_px, det.area_um2, det.diameter_um = m.area_px, m.area_um2, m.diameter_um
    det.centroid_x_px, det.centroid_y_px = m.centroid_x_px, m.centroid_y_px
    det.centroid_x_um, det.centroid_y_um = m.centroid_x_um, m.centroid_y_um
    det.save()
    return det


# --- per-image done marks ------------------------------------------------------------------------------
def image_done_set(*, user, image: Image, done: bool, request=None) -> bool:
    """Mark (``done``) or unmark ``image`` as finished by ``user``; returns the new state."""
    with transaction.atomic():
        existing = ImageReviewDone.objects.select_for_update().filter(image=image, reviewer=user).first()
        if done and existing is None:
            mark = ImageReviewDone(center_id=image.center_id, image=image, reviewer=user)
            mark.full_clean(validate_unique=False)
            mark.save()
            audit_record(actor=user, action="review.image.done", center=image.center_id, obj=image,
                         after={"done": True}, request=request)
        elif not done and existing is not None:
            existing.delete()
            audit_record(actor=user, action="review.image.undone", center=image.center_id, obj=image,
                         before={"done": True}, after={"done": False}, request=request)
    return done
