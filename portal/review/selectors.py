"""Reads for review pages and the review API. Every read takes the requesting user.

Access: one object is reached through ``portal.review.access`` (center, role and blinding together);
lists filter by the policy's ``review.view`` centers and leave out sessions the user is blinded from.
"""
from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from portal.centers.access import center_ids_for
from portal.centers.policy import Action, roles_allow
from portal.centers.selectors import user_roles_in_center
from portal.core.errors import DomainError
from portal.imaging.models import Image, ImageSession
from portal.imaging.selectors import blinded_session_ids, session_filter
from portal.results.models import Detection, ResultSet, ResultSetStatus, ResultSource
from portal.review.access import access_session
from portal.review.lib.finalcall import Call, agreement, final_call, final_mask_owner
from portal.review.models import Adjudication, Decision, ImageReviewDone, MaskCorrection, PickList


def coco_options_from_query(*, images: str, login_session) -> dict:
    """``images=reviewed|all`` and the reviewer's threshold (kept in their login session), for
    ``exports.coco_export``."""
    if images not in ("reviewed", "all"):
        raise DomainError(_("images must be 'reviewed' or 'all'."), extra={"field": "images"})
    return {"include_unreviewed": images == "all", "threshold": review_threshold_get(login_session)}


def sessions_from_query(*, user, raw_ids: list[str], action: Action = Action.REVIEW_EXPORT) -> list[ImageSession]:
    """The sessions an export names (``?session=<id>`` repeated), each reached through ``access_session``."""
    if not raw_ids:
        raise DomainError(_("Name at least one session: ?session=<id>."), extra={"field": "session"})
    if len(raw_ids) > 50:
        raise DomainError(_("At most 50 sessions per export."))
    sessions = []
    for raw in raw_ids:
        try:
            sid = uuid.UUID(raw)
        except ValueError:
            raise DomainError(_('%(raw)s is not a session id.') % {"raw": repr(raw)}, extra={"field": "session"})
        sessions.append(access_session(user=user, id=sid, action=action))
    return sessions


def pick_lists_of(session: ImageSession, *, limit: int = 20) -> list[PickList]:
    """The newest pick lists of a session (the caller has reached it with ``review.export``)."""
    return list(session.pick_lists.select_related("created_by")[:limit])


# --- sessions -------------------------------------------------------------------------------------------
SESSION_STATUS_FILTERS = {
    "awaiting": "Awaiting analysis",
    "analyzing": "Queued or analyzing",
    "analyzed": "Analyzed (ready for review)",
    "failed": "Analysis failed",
}


def session_list(*, user, center_id=None, patient_code: str = "", status: str = "", date_from=None,
                 date_to=None) -> QuerySet[ImageSession]:
    """Sessions of the user's centers where they review, administer or upload, minus blinded ones."""
    qs = (ImageSession.objects.filter(center_id__in=center_ids_for(user, Action.REVIEW_VIEW))
          .exclude(pk__in=blinded_session_ids(user)))
    qs = session_filter(qs, center_id=center_id, patient_code=patient_code, date_from=date_from, date_to=date_to)
    qs = qs.annotate(
        n_images=Count("images", distinct=True),
        n_analyzed=Count("images", filter=Q(images__status="analyzed"), distinct=True),
        n_running=Count("images", filter=Q(images__status__in=["queued", "analyzing"]), distinct=True),
        n_failed=Count("images", filter=Q(images__status="failed"), distinct=True),
    )
    if status == "awaiting":
        qs = qs.filter(n_analyzed=0, n_running=0)
    elif status == "analyzing":
        qs = qs.filter(n_running__gt=0)
    elif status == "analyzed":
        qs = qs.filter(n_analyzed__gt=0)
    elif status == "failed":
        qs = qs.filter(n_failed__gt=0)
    return qs.select_related("patient", "center").order_by("-acquisition_date", "-created_at")


def session_images(session: ImageSession) -> list[Image]:
    return list(Image.objects.filter(session=session).order_by("created_at", "page_index", "id"))


def session_analysis_counts(session: ImageSession) -> dict:
    """Images of the whole session by analysis status (a job may cover only some of them)."""
    rows = dict(Image.objects.filter(session=session).values_list("status").annotate(n=Count("id")))
    return {"total": sum(rows.values()), "analyzed": rows.get("analyzed", 0),
            "running": rows.get("queued", 0) + rows.get("analyzing", 0), "failed": rows.get("failed", 0)}


def session_latest_job(session: ImageSession):
    from portal.jobs.models import InferenceJob

    return InferenceJob.objects.filter(session=session).order_by("-created_at").first()


# --- result sets and final calls ------------------------------------------------------------------------
def current_result_sets(images: Iterable[Image]) -> dict:
    """image id -> {"model": ResultSet | None, "manual": ResultSet | None}: what the reviewers judge now.

    The model set is the image's newest complete model result set; the manual set holds drawn instances.
    """
    ids = [i.pk for i in images]
    out = {i: {"model": None, "manual": None} for i in ids}
    rows = ResultSet.objects.filter(image_id__in=ids).filter(
        Q(source=ResultSource.MANUAL) | Q(source=ResultSource.MODEL, status=ResultSetStatus.COMPLETE)
    ).order_by("-completed_at", "-created_at")
    for rs in rows:
        slot = out[rs.image_id]
        if slot[rs.source] is None:
            slot[rs.source] = rs
    return out


def current_result_set_ids(images: Iterable[Image]) -> list:
    return [rs.pk for slots in current_result_sets(images).values() for rs in slots.values() if rs is not None]


# --- the cells to review -------------------------------------------------------------------------------
REVIEW_THRESHOLD_DEFAULT = 0.5
REVIEW_THRESHOLD_SESSION_KEY = "review_threshold"


def review_threshold_get(session_store) -> float:
    """The reviewer's score threshold, kept in their login session (the viewer's slider sets it)."""
    raw = session_store.get(REVIEW_THRESHOLD_SESSION_KEY, REVIEW_THRESHOLD_DEFAULT) if session_store else None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return REVIEW_THRESHOLD_DEFAULT
    return value if 0.0 <= value <= 1.0 else REVIEW_THRESHOLD_DEFAULT


def is_cell_to_review(*, source: str, score: float | None, threshold: float) -> bool:
    """The one definition of "a cell to review": a drawn cell, or a model detection scored at or above
    the reviewer's threshold. The viewer (``passesThreshold`` in ``static/review/viewer.js``), its
    progress, the session page and the exports all count by it."""
    return source == ResultSource.MANUAL or score is None or score >= threshold


@dataclass
class CallRow:
    detection_id: object
    image_id: object
    class_name: str
    source: str
    call: Call | None
    agreement: str
    score: float | None = None
    decided: bool = False  # at least one reviewer's decision

    def to_review(self, threshold: float) -> bool:
        return is_cell_to_review(source=self.source, score=self.score, threshold=threshold)


def calls_for_result_sets(result_set_ids: list) -> dict:
    """detection id -> :class:`CallRow` for every detection of the result sets (a few flat queries)."""
    dets = Detection.objects.filter(result_set_id__in=result_set_ids).values_list(
        "id", "result_set__image_id", "class_name", "source", "score")
    decisions = defaultdict(list)
    for det_id, verdict, cls in Decision.objects.filter(result_set_id__in=result_set_ids).values_list(
            "detection_id", "verdict", "class_name"):
        decisions[det_id].append((verdict, cls))
    adjudications = {
        det_id: (verdict, cls) for det_id, verdict, cls in Adjudication.objects.filter(
            result_set_id__in=result_set_ids).values_list("detection_id", "verdict", "class_name")
    }
    out = {}
    for det_id, image_id, cls, source, score in dets:
        d = decisions.get(det_id, [])
        out[det_id] = CallRow(det_id, image_id, cls, source,
                              final_call(detection_class=cls, decisions=d, adjudication=adjudications.get(det_id)),
                              agreement(d, cls), score=score,
                              decided=bool(d) or det_id in adjudications)
    return out


def reviewed_image_ids(calls: dict, threshold: float) -> set:
    """Images whose every cell to review has a decision (and that have at least one decided cell)."""
    open_images, decided_images = set(), set()
    for row in calls.values():
        if not row.to_review(threshold):
            continue
        (decided_images if row.decided else open_images).add(row.image_id)
    return decided_images - open_images


def session_image_summaries(session: ImageSession, *, threshold: float = REVIEW_THRESHOLD_DEFAULT,
                            user=None) -> list[dict]:
    """Per image, over its cells to review at ``threshold``: cells per class, final accepted per class,
    final calls, agreement counts, and the analysis status of the session as a whole; with ``user``, also
    the done marks (``done_mine``, ``done_by``)."""
    images = session_images(session)
    slots = current_result_sets(images)
    rs_ids = [rs.pk for s in slots.values() for rs in s.values() if rs is not None]
    calls = calls_for_result_sets(rs_ids)
    per_image = {i.pk: {"image": i, "counts": defaultdict(int), "accepted": defaultdict(int), "total": 0,
                        "final": 0, "agree": 0, "disagree": 0, "decided": 0,
                        "has_results": slots[i.pk]["model"] is not None or slots[i.pk]["manual"] is not None}
                 for i in images}
    reviewed = reviewed_image_ids(calls, threshold)
    marks = image_done_marks(per_image, user=user) if user is not None else {}
    for entry in per_image.values():
        entry["reviewed"] = entry["image"].pk in reviewed
        mark = marks.get(entry["image"].pk) or {"mine": False, "count": 0}
        entry["done_mine"], entry["done_by"] = mark["mine"], mark["count"]
    for row in calls.values():
        if not row.to_review(threshold):
            continue
        entry = per_image[row.image_id]
        entry["counts"][row.class_name] += 1
        entry["total"] += 1
        entry["decided"] += int(row.decided)
        if row.call is not None:
            entry["final"] += 1
            if row.call.verdict == "accept":
                entry["accepted"][row.call.class_name] += 1
        if row.agreement in ("agree", "disagree"):
            entry[row.agreement] += 1
    return [per_image[i.pk] for i in images]


# --- corrected masks and done marks ----------------------------------------------------------------------
def current_correction(*, user, detection: Detection) -> MaskCorrection | None:
    """``user``'s current correction of ``detection``: their newest one not reverted."""
    return (MaskCorrection.objects.filter(detection=detection, reviewer=user, reverted_at__isnull=True)
            .order_by("-created_at").first())


def correction_history(*, user, detection: Detection) -> list[MaskCorrection]:
    """All of ``user``'s corrections of ``detection``, newest first (reverted ones too)."""
    return list(MaskCorrection.objects.filter(detection=detection, reviewer=user).order_by("-created_at"))


def _current_corrections(qs) -> dict:
    """(detection id, reviewer id) -> the newest not reverted correction, from a MaskCorrection queryset."""
    out = {}
    for c in qs.filter(reverted_at__isnull=True).order_by("created_at"):
        out[(c.detection_id, c.reviewer_id)] = c
    return out


def my_corrections(*, user, result_set_ids: list) -> dict:
    """detection id -> ``user``'s current correction, over the result sets (one query)."""
    return {det: c for (det, _), c in _current_corrections(
        MaskCorrection.objects.filter(result_set_id__in=result_set_ids, reviewer=user)).items()}


def final_masks_for(detection_ids: Iterable) -> dict:
    """detection id -> the correction that is its final mask (``FINAL_MASK_RULE``); detections whose
    final mask is their own are left out."""
    ids = list(detection_ids)
    current = _current_corrections(MaskCorrection.objects.filter(detection_id__in=ids))
    if not current:
        return {}
    corrected_ids = {det for det, _ in current}
    dets = dict(Detection.objects.filter(pk__in=corrected_ids).values_list("id", "class_name"))
    decisions = defaultdict(list)
    for det_id, reviewer_id, verdict, cls in Decision.objects.filter(detection_id__in=corrected_ids).values_list(
            "detection_id", "reviewer_id", "verdict", "class_name"):
        decisions[det_id].append((reviewer_id, verdict, cls))
    adjudications = {det_id: (adj_by, verdict, cls) for det_id, adj_by, verdict, cls in Adjudication.objects.filter(
        detection_id__in=corrected_ids).values_list("detection_id", "adjudicator_id", "verdict", "class_name")}
    out = {}
    for det_id in corrected_ids:
        adj = adjudications.get(det_id)
        call = final_call(detection_class=dets[det_id], decisions=[(v, c) for _, v, c in decisions[det_id]],
                          adjudication=(adj[1], adj[2]) if adj else None)
        corrected = {r: c.created_at for (d, r), c in current.items() if d == det_id}
        owner = final_mask_owner(call=call, detection_class=dets[det_id], decisions=decisions[det_id],
                                 adjudicator=adj[0] if adj else None, corrected=corrected)
        if owner is not None:
            out[det_id] = current[(det_id, owner)]
    return out


def image_done_marks(image_ids: Iterable, *, user) -> dict:
    """image id -> {"mine": bool, "count": number of reviewers who marked it done}."""
    out = defaultdict(lambda: {"mine": False, "count": 0})
    for image_id, reviewer_id in ImageReviewDone.objects.filter(image_id__in=list(image_ids)).values_list(
            "image_id", "reviewer_id"):
        out[image_id]["count"] += 1
        out[image_id]["mine"] = out[image_id]["mine"] or reviewer_id == user.pk
    return out


def image_done_summary(*, user, image: Image, images: list[Image] | None = None) -> dict:
    """``done`` (mine), ``done_by`` (reviewers) and ``next_open_id``: the next image of the session, after
    this one and wrapping around, that ``user`` has not marked done (None when all are)."""
    images = images if images is not None else session_images(image.session)
    pos = next(k for k, i in enumerate(images) if i.pk == image.pk)
    marks = image_done_marks([i.pk for i in images], user=user)
    next_open = next((i for i in images[pos + 1:] + images[:pos] if not marks[i.pk]["mine"]), None)
    return {"done": marks[image.pk]["mine"], "done_by": marks[image.pk]["count"],
            "next_open_id": str(next_open.pk) if next_open else None}


def correction_out(c: MaskCorrection | None) -> dict | None:
    """A correction as the viewer and the API show it."""
    if c is None:
        return None
    return {"id": str(c.pk), "operation": c.operation, "rle": c.mask_rle, "polygon": c.polygon,
            "box": [c.x1, c.y1, c.x2, c.y2], "area_px": c.area_px, "area_um2": c.area_um2,
            "diameter_um": c.diameter_um, "centroid_px": [c.centroid_x_px, c.centroid_y_px],
            "partner": str(c.partner_id) if c.partner_id else None, "created_at": c.created_at.isoformat(),
            "reverted": c.reverted_at is not None}


# --- the viewer's payload -------------------------------------------------------------------------------
def _decision_out(d) -> dict:
    return {"verdict": d.verdict, "class_name": d.class_name, "updated_at": d.updated_at.isoformat()}


def image_review_payload(*, user, image: Image, threshold: float = REVIEW_THRESHOLD_DEFAULT) -> dict:
    """Everything the viewer needs for one image: instances with masks, my decisions, others' counts, and
    the reviewer's threshold that decides which cells are to review (``is_cell_to_review``)."""
    from portal.review.classes import CLASS_COLORS, CLASS_NAMES
    from portal.review.lib.finalcall import FINAL_CALL_RULE, FINAL_CALL_RULE_ID

    slots = current_result_sets([image])[image.pk]
    rs_ids = [rs.pk for rs in slots.values() if rs is not None]
    detections = list(
        Detection.objects.filter(result_set_id__in=rs_ids).select_related("created_by").order_by(
            "source", "index")
    )
    decisions = defaultdict(list)
    for d in Decision.objects.filter(result_set_id__in=rs_ids).select_related("reviewer"):
        decisions[d.detection_id].append(d)
    adjudications = {a.detection_id: a for a in Adjudication.objects.filter(result_set_id__in=rs_ids)
                     .select_related("adjudicator")}
    held = user_roles_in_center(user, image.center_id)
    is_admin = roles_allow(held, Action.REVIEW_ADJUDICATE)
    corrections = my_corrections(user=user, result_set_ids=rs_ids)
    instances = []
    agreement_counts = {"none": 0, "single": 0, "agree": 0, "disagree": 0}
    for det in detections:
        ds = decisions.get(det.pk, [])
        pairs = [(d.verdict, d.class_name) for d in ds]
        adj = adjudications.get(det.pk)
        call = final_call(detection_class=det.class_name, decisions=pairs,
                          adjudication=(adj.verdict, adj.class_name) if adj else None)
        agr = agreement(pairs, det.class_name)
        agreement_counts[agr] += 1
        mine = next((d for d in ds if d.reviewer_id == user.pk), None)
        others = {"accept": 0, "reject": 0, "uncertain": 0}
        for d in ds:
            if d.reviewer_id != user.pk:
                others[d.verdict] += 1
        item = {
            "id": str(det.pk), "result_set": str(det.result_set_id), "source": det.source, "index": det.index,
            "class_name": det.class_name, "score": det.score,
            "box": [det.x1, det.y1, det.x2, det.y2], "rle": det.mask_rle, "polygon": det.polygon,
            "area_px": det.area_px, "area_um2": det.area_um2, "diameter_um": det.diameter_um,
            "centroid_px": [det.centroid_x_px, det.centroid_y_px],
            "centroid_um": [det.centroid_x_um, det.centroid_y_um] if det.centroid_x_um is not None else None,
            "created_by": det.created_by.get_username() if det.created_by_id else None,
            "editable": det.source == ResultSource.MANUAL and (is_admin or det.created_by_id == user.pk),
            "mine": _decision_out(mine) if mine else None,
            "others": others,
            "reviewers": len(ds),
            "agreement": agr,
            "adjudication": ({**_decision_out(adj), "by": adj.adjudicator.get_username(), "note": adj.note}
                             if adj else None),
            "final": {"verdict": call.verdict, "class_name": call.class_name, "decided_by": call.decided_by}
            if call else None,
            "correction": correction_out(corrections.get(det.pk)),
        }
        if is_admin:
            item["decisions"] = [{**_decision_out(d), "reviewer": d.reviewer.get_username()} for d in ds]
        instances.append(item)
    images = session_images(image.session)
    pos = next(k for k, i in enumerate(images) if i.pk == image.pk)
    done = image_done_summary(user=user, image=image, images=images)
    return {
        "image": {
            "id": str(image.pk), "session": str(image.session_id), "width": image.width, "height": image.height,
            "um_per_px": image.um_per_px, "position": pos + 1, "count": len(images),
            "prev_id": str(images[pos - 1].pk) if pos > 0 else None,
            "next_id": str(images[pos + 1].pk) if pos + 1 < len(images) else None,
            **done,
        },
        "classes": [{"id": k + 1, "name": n, "color": CLASS_COLORS[n]} for k, n in enumerate(CLASS_NAMES)],
        "rule": FINAL_CALL_RULE, "rule_id": FINAL_CALL_RULE_ID,
        "me": {
            "username": user.get_username(),
            "can_decide": roles_allow(held, Action.REVIEW_DECIDE),
            "can_adjudicate": roles_allow(held, Action.REVIEW_ADJUDICATE),
            "can_annotate": roles_allow(held, Action.REVIEW_DECIDE),
        },
        "result_sets": {k: (str(v.pk) if v else None) for k, v in slots.items()},
        "instances": instances,
        "agreement": agreement_counts,
        "review": {"threshold": threshold},
    }


def detection_state(*, user, detection: Detection) -> dict:
    """One detection's review state after a write: my decision, counts, agreement, final call."""
    decisions = list(Decision.objects.filter(detection=detection))
    adj = Adjudication.objects.filter(detection=detection).first()
    pairs = [(d.verdict, d.class_name) for d in decisions]
    call = final_call(detection_class=detection.class_name, decisions=pairs,
                      adjudication=(adj.verdict, adj.class_name) if adj else None)
    mine = next((d for d in decisions if d.reviewer_id == user.pk), None)
    others = {"accept": 0, "reject": 0, "uncertain": 0}
    for d in decisions:
        if d.reviewer_id != user.pk:
            others[d.verdict] += 1
    return {
        "id": str(detection.pk),
        "mine": _decision_out(mine) if mine else None,
        "others": others,
        "reviewers": len(decisions),
        "agreement": agreement(pairs, detection.class_name),
        "adjudication": ({**_decision_out(adj), "by": adj.adjudicator.get_username(), "note": adj.note}
                         if adj else None),
        "final": {"verdict": call.verdict, "class_name": call.class_name, "decided_by": call.decided_by}
        if call else None,
    }


# --- for other apps ---------------------------------------------------------------------------------------
def decider_ids_for_sessions(session_ids: Iterable) -> set:
    """Ids of the users who decided, adjudicated or froze pick lists on these sessions (the validation app
    keeps them out of the sessions' studies as validators)."""
    session_ids = list(session_ids)
    found = set(Decision.objects.filter(result_set__image__session_id__in=session_ids)
                .values_list("reviewer_id", flat=True))
    found |= set(Adjudication.objects.filter(result_set__image__session_id__in=session_ids)
                 .values_list("adjudicator_id", flat=True))
    found |= set(PickList.objects.filter(session_id__in=session_ids).values_list("created_by_id", flat=True))
    return found


# --- the home page: sessions waiting for review -------------------------------------------------------
HOME_SESSIONS_SCANNED = 50


def sessions_to_review(*, user, threshold: float = REVIEW_THRESHOLD_DEFAULT, limit: int = 10) -> list[dict]:
    """The newest analysed sessions of the centers where ``user`` decides reviews (minus blinded ones) that
    still have undecided cells to review, each ``{"session", "to_review", "decided"}`` counted by the one
    definition (``is_cell_to_review`` at ``threshold``; "decided" as on the session page). A fixed number
    of queries: the newest ``HOME_SESSIONS_SCANNED`` analysed sessions are looked at."""
    sessions = list(
        ImageSession.objects.filter(center_id__in=center_ids_for(user, Action.REVIEW_DECIDE))
        .exclude(pk__in=blinded_session_ids(user)).filter(images__status="analyzed").distinct()
        .select_related("patient", "center").order_by("-acquisition_date", "-created_at")[:HOME_SESSIONS_SCANNED]
    )
    if not sessions:
        return []
    images = list(Image.objects.filter(session__in=sessions))
    calls = calls_for_result_sets(current_result_set_ids(images))
    session_of = {i.pk: i.session_id for i in images}
    counts = {s.pk: {"to_review": 0, "decided": 0} for s in sessions}
    for row in calls.values():
        if row.to_review(threshold):
            entry = counts[session_of[row.image_id]]
            entry["to_review"] += 1
            entry["decided"] += int(row.decided)
    waiting = [{"session": s, **counts[s.pk]} for s in sessions if counts[s.pk]["decided"] < counts[s.pk]["to_review"]]
    return waiting[:limit]
