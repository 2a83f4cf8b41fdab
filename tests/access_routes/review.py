"""Access declarations of the review routes (format: ``tests/access_matrix.py``).

Reviewers and center admins review; uploaders view their center's sessions read-only; validators and
stain technicians are refused (403) in their own center; another center's objects are 404.
"""
from tests.access_matrix import DELETE, GET, PATCH, POST, PUT, Route, statuses  # noqa: F401

SQUARE = [[100.0, 100.0], [130.0, 100.0], [130.0, 130.0], [100.0, 130.0]]

VIEW = statuses(200, validator=403, stain=403, auditor=404, anonymous=302)
EXPORT_HTML = statuses(200, uploader=403, validator=403, stain=403, auditor=404, anonymous=302)
VIEW_API = statuses(200, validator=403, stain=403, auditor=404, anonymous=401)
EXPORT_API = statuses(200, uploader=403, validator=403, stain=403, auditor=404, anonymous=401)


def _image(cast, cc):
    from portal.results.models import Detection
    from portal.testing.review import make_reviewable_image

    image = make_reviewable_image(cc, n=4, stage=(1000.0, 2000.0))
    return {"image": image, "session": image.session,
            "detection": Detection.objects.filter(result_set__image=image).order_by("index").first()}


def _drawn(cast, cc):
    from portal.review.services import manual_instance_create

    objs = _image(cast, cc)
    objs["drawn"] = manual_instance_create(user=cc.reviewer, image=objs["image"], polygon=SQUARE)
    return objs


def _pick_list(cast, cc):
    from portal.review.services import decision_set, pick_list_create

    objs = _image(cast, cc)
    decision_set(user=cc.reviewer, detection=objs["detection"], verdict="accept", class_name="round_spermatid")
    objs["pick_list"] = pick_list_create(user=cc.reviewer, session=objs["session"])
    return objs


def _accepted(cast, cc):
    from portal.review.services import decision_set

    objs = _image(cast, cc)
    decision_set(user=cc.reviewer, detection=objs["detection"], verdict="accept", class_name="round_spermatid")
    return objs


def _session_kw(objs):
    return {"session_id": objs["session"].pk}


def _image_kw(objs):
    return {"image_id": objs["image"].pk}


def _det_kw(objs):
    return {"detection_id": objs["detection"].pk}


def _pick_kw(objs):
    return {"pick_list_id": objs["pick_list"].pk}


def _session_query(objs):
    return {"session": str(objs["session"].pk)}


ROUTES = [
    # --- pages ---------------------------------------------------------------------------------------
    Route(name="review:session-list", build=_image, list_ids=lambda objs: [objs["session"].pk],
          checks=[GET(own=statuses(200, validator=403, stain=403, auditor=403, anonymous=302))]),
    Route(name="review:session-detail", build=_image, kwargs=lambda objs: {"pk": objs["session"].pk},
          checks=[GET(own=VIEW)]),
    Route(name="review:picklist-create", build=_accepted, kwargs=_session_kw,
          checks=[POST(own=statuses(403, reviewer=302, center_admin=302, auditor=404, anonymous=302))]),
    Route(name="review:viewer", build=_image, kwargs=_image_kw, checks=[GET(own=VIEW)]),
    Route(name="review:image-display", build=_image, kwargs=_image_kw, checks=[GET(own=VIEW)]),
    Route(name="review:image-preview", build=_image, kwargs=_image_kw, checks=[GET(own=VIEW)]),
    Route(name="review:image-thumb", build=_image, kwargs=_image_kw, checks=[GET(own=VIEW)]),
    Route(name="review:detection-crop", build=_image, kwargs=_det_kw, checks=[GET(own=VIEW)]),
    Route(name="review:coco-zip", build=_image, checks=[GET(own=EXPORT_HTML, query=_session_query, other=404)]),
    Route(name="review:picklist", build=_pick_list, kwargs=_pick_kw, checks=[GET(own=EXPORT_HTML)]),
    Route(name="review:picklist-csv", build=_pick_list, kwargs=_pick_kw, checks=[GET(own=EXPORT_HTML)]),
    Route(name="review:picklist-geojson", build=_pick_list, kwargs=_pick_kw, checks=[GET(own=EXPORT_HTML)]),
    Route(name="review:picklist-pos", build=_pick_list, kwargs=_pick_kw, checks=[GET(own=EXPORT_HTML)]),
    # --- API -----------------------------------------------------------------------------------------
    Route(name="api-review-image", build=_image, kwargs=_image_kw, checks=[GET(own=VIEW_API)]),
    Route(name="api-review-instance-create", build=_image, kwargs=_image_kw,
          checks=[POST(payload=lambda objs: {"polygon": SQUARE, "class_name": "round_spermatid"},
                       own=statuses(403, reviewer=201, center_admin=201, auditor=404, anonymous=401))]),
    Route(name="api-review-instance", build=_drawn, kwargs=lambda objs: {"detection_id": objs["drawn"].pk},
          checks=[PATCH(payload=lambda objs: {"class_name": "leukocyte"},
                        own=statuses(403, reviewer=200, center_admin=200, auditor=404, anonymous=401))]),
    Route(name="api-review-decision", build=_image, kwargs=_det_kw,
          checks=[PUT(payload=lambda objs: {"verdict": "accept"},
                      own=statuses(403, reviewer=200, center_admin=200, auditor=404, anonymous=401))]),
    Route(name="api-review-adjudication", build=_image, kwargs=_det_kw,
          checks=[PUT(payload=lambda objs: {"verdict": "reject"},
                      own=statuses(403, center_admin=200, auditor=404, anonymous=401))]),
    Route(name="api-review-correction", build=_image, kwargs=_det_kw,
          checks=[GET(own=VIEW_API),
                  PUT(payload=lambda objs: {"polygon": SQUARE},
                      own=statuses(403, reviewer=200, center_admin=200, auditor=404, anonymous=401))]),
    Route(name="api-review-split", build=_image, kwargs=_det_kw,
          note="the line crosses the first detection's centre vertically",
          checks=[POST(payload=lambda objs: {"line": [[objs["detection"].centroid_x_px, 0.0],
                                                       [objs["detection"].centroid_x_px, 299.0]]},
                       own=statuses(403, reviewer=201, center_admin=201, auditor=404, anonymous=401))]),
    Route(name="api-review-merge", build=_image, kwargs=_det_kw,
          checks=[POST(payload=lambda objs: {"other": str(objs["detection"].result_set.detections
                                                         .order_by("index")[1].pk)},
                       own=statuses(403, reviewer=201, center_admin=201, auditor=404, anonymous=401))]),
    Route(name="api-review-image-done", build=_image, kwargs=_image_kw,
          checks=[PUT(payload=lambda objs: {"done": True},
                      own=statuses(403, reviewer=200, center_admin=200, auditor=404, anonymous=401))]),
    Route(name="api-review-threshold", build=_image, own_ids_must_appear=False,
          note="a preference of the requesting user's own login session; no object, nothing of a center",
          checks=[PUT(payload=lambda objs: {"threshold": 0.3}, own=statuses(200, anonymous=401))]),
    Route(name="api-review-coco", build=_image, checks=[GET(own=EXPORT_API, query=_session_query, other=404)]),
    Route(name="api-review-picklist-create", build=_accepted, kwargs=_session_kw,
          checks=[POST(own=statuses(403, reviewer=201, center_admin=201, auditor=404, anonymous=401))]),
    Route(name="api-review-picklist", build=_pick_list, kwargs=_pick_kw, checks=[GET(own=EXPORT_API)]),
]
