"""Writes of the review app: decisions, adjudications, drawn instances and pick lists.

Every write validates, runs in a transaction and records an audit event with the state before and after.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from portal.audit.services import audit_record
from portal.core.errors import Conflict, DomainError
from portal.imaging.models import Image, ImageSession
from portal.results.models import Detection, ResultSet, ResultSetStatus, ResultSource
from portal.review.classes import CLASS_NAMES, TARGET_CLASS
from portal.review.lib.finalcall import FINAL_CALL_RULE
from portal.review.lib.geometry import GeometryError, clean_polygon, measure_polygon
from portal.review.models import Adjudication, Decision, PickList, PickListItem, Verdict
from portal.review.selectors import calls_for_result_sets, current_result_set_ids, current_result_sets


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
        with default_storage.open(name, "rb") as handle:
            return handle.read()
    if not image.display_file:
        raise DomainError(_("This image has no display version yet."), status_code=404)
    with image.display_file.open("rb") as handle, PILImage.open(handle) as im:
        im = im.convert("RGB")
        factor = max(1, -(-max(im.size) // PREVIEW_PX))  # ceil
        if factor > 1:
            im = im.reduce(factor)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    default_storage.save(name, ContentFile(data))
    return data
