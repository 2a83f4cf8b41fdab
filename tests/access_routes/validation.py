"""Access declarations of the validation app's routes (see ``tests.access_matrix``).

Administrators (center_admin of the running center) manage studies; validators reach only their own
blinded lists; stain technicians only their center's cells; pickers (center_admin/uploader) only draft
picked-cells studies. Another center's user gets 404 everywhere.
"""
from portal.testing import validation as vt
from portal.testing.cast import PASSWORD
from tests.access_matrix import DELETE, GET, POST, PUT, Route, statuses

NOT_FOUND = statuses(404, anonymous=302)
API_NOT_FOUND = statuses(404, anonymous=401)


def _html(only: dict, *, default=404) -> dict:
    return statuses(default, anonymous=302, **only)


def _api(only: dict, *, default=404) -> dict:
    return statuses(default, anonymous=401, **only)


def _draft(cast, cc):
    study = vt.make_draft_study(cast, cc)
    return {"study": study, "field": study.fields.first(), "pick": study.picks.first()}


def _open(cast, cc):
    study = vt.make_open_study(cast, cc)
    membership = study.validators.get(user=cc.validator)
    return {"study": study, "cell": membership.assignments.first().cell}


def _scored(cast, cc):
    objs = _open(cast, cc)
    membership = objs["study"].validators.get(user=cc.validator)
    vt.score_all(objs["study"], membership)
    return objs


def _whole_field(cast, cc):
    study = vt.make_open_study(cast, cc, design="whole_field")
    return {"study": study, "field": study.fields.first()}


def _unblinded(cast, cc):
    return {"study": vt.make_unblinded_study(cast, cc)}


def _stain_bench(cast, cc):
    """An open study whose field has a PRM1 image uploaded by the center's stain technician."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from portal.testing import staining
    from portal.validation import services

    objs = _open(cast, cc)
    field = objs["study"].fields.first()
    upload = SimpleUploadedFile("prm1.png", staining.fluorescence_png(), content_type="image/png")
    [stain_image] = services.stain_image_upload(actor=cc.stain, study=objs["study"], field=field, channel="prm1",
                                              upload=upload)
    return {**objs, "field": field, "stain_image": stain_image}


def _stain_image_kw(objs):
    return {"study_id": objs["study"].pk, "stain_image_id": objs["stain_image"].pk}


def _pna_upload(objs):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from portal.testing import staining

    return {"channel": "pna", "file": SimpleUploadedFile("pna.png", staining.fluorescence_png(seed=5),
                                                         content_type="image/png")}


def _study_kw(objs):
    return {"study_id": objs["study"].pk}


def _create_payload(cast, cc):
    session = vt.make_session(cc)
    vt.make_image(session)
    return {"session": session, "model_version": vt.make_model_version(), "center": cc.center}


ROUTES = [
    # --- administrators: API ---
    Route(name="api-validation-study-list", build=_create_payload, list_ids=lambda o: [],
          own_ids_must_appear=False,
          checks=[GET(own=_api({}, default=200), other=200),
                  POST(payload=lambda o: {"name": "matrix study", "center": str(o["center"].pk),
                                          "sessions": [str(o["session"].pk)],
                                          "model_version": str(o["model_version"].pk)},
                       own=_api({"center_admin": 201}), other=404)]),
    Route(name="api-validation-study-detail", build=_draft, kwargs=_study_kw,
          checks=[GET(own=_api({"center_admin": 200}))]),
    Route(name="api-validation-study-validators", build=_draft, kwargs=_study_kw,
          checks=[POST(payload=lambda o: {"username": o["study"].validators.first().user.username},
                       own=_api({"center_admin": 200}))]),
    Route(name="api-validation-study-validator-delete", build=_draft,
          kwargs=lambda o: {"study_id": o["study"].pk, "username": o["study"].validators.first().user.username},
          checks=[DELETE(own=_api({"center_admin": 204}))]),
    Route(name="api-validation-study-open", build=_draft, kwargs=_study_kw,
          checks=[POST(own=_api({"center_admin": 200}))]),
    Route(name="api-validation-study-lock", build=_open, kwargs=_study_kw,
          note="not every validator has signed: the admin is refused with 409",
          checks=[POST(payload=lambda o: {"password": PASSWORD}, own=_api({"center_admin": 409}))]),
    Route(name="api-validation-study-unblind", build=_open, kwargs=_study_kw,
          note="an open study cannot be unblinded: 409 for the admin",
          checks=[POST(payload=lambda o: {"password": PASSWORD}, own=_api({"center_admin": 409}))]),
    Route(name="api-validation-study-results", build=_unblinded, kwargs=_study_kw,
          checks=[GET(own=_api({"center_admin": 200, "validator": 200}))]),
    # --- embryologist picks (draft) ---
    Route(name="api-validation-study-fields", build=_draft, kwargs=_study_kw,
          checks=[GET(own=_api({"center_admin": 200, "uploader": 200}))]),
    Route(name="api-validation-study-picks", build=_draft, kwargs=_study_kw,
          checks=[GET(own=_api({"center_admin": 200, "uploader": 200})),
                  POST(payload=lambda o: {"field": o["field"].public_id, "x_px": 30, "y_px": 250},
                       own=_api({"center_admin": 201, "uploader": 201}))]),
    Route(name="api-validation-study-pick-delete", build=_draft,
          kwargs=lambda o: {"study_id": o["study"].pk, "pick_id": o["pick"].pk},
          note="only the embryologist who made a pick (the uploader here) can remove it",
          checks=[DELETE(own=_api({"uploader": 204}))]),
    # --- validators (blinded) ---
    Route(name="api-validation-my-studies", build=_open, list_ids=lambda o: [o["study"].pk],
          own_ids_must_appear=False, checks=[GET(own=_api({}, default=200), other=200)]),
    Route(name="api-validation-my-cells", build=_open, kwargs=_study_kw,
          checks=[GET(own=_api({"validator": 200}))]),
    Route(name="api-validation-my-cell", build=_open,
          kwargs=lambda o: {"study_id": o["study"].pk, "cell_id": o["cell"].public_id},
          checks=[GET(own=_api({"validator": 200})),
                  PUT(payload=lambda o: {"morphology": "yes"}, own=_api({"validator": 200}))]),
    Route(name="api-validation-my-cell-context", build=_open,
          kwargs=lambda o: {"study_id": o["study"].pk, "cell_id": o["cell"].public_id},
          checks=[GET(own=_api({"validator": 200}))]),
    Route(name="api-validation-my-sign", build=_scored, kwargs=_study_kw,
          checks=[POST(payload=lambda o: {"password": PASSWORD}, own=_api({"validator": 201}))]),
    Route(name="api-validation-my-fields", build=_whole_field, kwargs=_study_kw,
          checks=[GET(own=_api({"validator": 200}))]),
    Route(name="api-validation-my-missed", build=_whole_field,
          kwargs=lambda o: {"study_id": o["study"].pk, "field_id": o["field"].public_id},
          checks=[POST(payload=lambda o: {"x_px": 370, "y_px": 280}, own=_api({"validator": 201}))]),
    # --- stain technicians (blinded) ---
    Route(name="api-validation-stain-studies", build=_open, list_ids=lambda o: [o["study"].pk],
          own_ids_must_appear=False, checks=[GET(own=_api({}, default=200), other=200)]),
    Route(name="api-validation-stain-cells", build=_open, kwargs=_study_kw,
          checks=[GET(own=_api({"stain": 200}))]),
    Route(name="api-validation-stain-cell", build=_open,
          kwargs=lambda o: {"study_id": o["study"].pk, "cell_id": o["cell"].public_id},
          checks=[PUT(payload=lambda o: {"prm1": "pos"}, own=_api({"stain": 200}))]),
    Route(name="api-validation-stain-fields", build=_stain_bench, kwargs=_study_kw,
          checks=[GET(own=_api({"stain": 200}))]),
    Route(name="api-validation-stain-images", build=_stain_bench,
          kwargs=lambda o: {"study_id": o["study"].pk, "field_id": o["field"].public_id},
          checks=[POST(payload=_pna_upload, fmt="multipart", own=_api({"stain": 201}))]),
    Route(name="api-validation-stain-image", build=_stain_bench, kwargs=_stain_image_kw,
          checks=[DELETE(own=_api({"stain": 204}))]),
    Route(name="api-validation-stain-image-registration", build=_stain_bench, kwargs=_stain_image_kw,
          checks=[PUT(payload=lambda o: {"method": "manual", "stain_points": [[10, 10], [200, 150]],
                                         "field_points": [[12, 8], [202, 148]]}, own=_api({"stain": 200}))]),
    Route(name="api-validation-stain-import", build=_open, kwargs=_study_kw,
          checks=[POST(payload=lambda o: {"csv": f"cell,prm1,pna\n{o['cell'].public_id},pos,neg\n"},
                       own=_api({"stain": 200}))]),
    # --- HTML pages ---
    Route(name="validation:index", per_center=False, checks=[GET(own=statuses(200, anonymous=302))]),
    Route(name="validation:study-create", per_center=False,
          checks=[GET(own=_html({"center_admin": 200}))]),
    Route(name="validation:study", build=_draft, kwargs=_study_kw,
          checks=[GET(own=_html({"center_admin": 200}))]),
    Route(name="validation:study-lock", build=_open, kwargs=_study_kw,
          checks=[GET(own=_html({"center_admin": 200})),
                  POST(payload=lambda o: {"password": PASSWORD}, fmt="multipart",
                       own=_html({"center_admin": 409}))],
          note="not every validator has signed: the confirmation page answers 409"),
    Route(name="validation:study-unblind", build=_open, kwargs=_study_kw,
          checks=[GET(own=_html({"center_admin": 200})),
                  POST(payload=lambda o: {"password": PASSWORD}, fmt="multipart",
                       own=_html({"center_admin": 409}))],
          note="an open study cannot be unblinded: the confirmation page answers 409"),
    Route(name="validation:pick", build=_draft, kwargs=_study_kw,
          checks=[GET(own=_html({"center_admin": 200, "uploader": 200}))]),
    Route(name="validation:score", build=_open, kwargs=_study_kw, checks=[GET(own=_html({"validator": 200}))]),
    Route(name="validation:missed", build=_whole_field, kwargs=_study_kw,
          checks=[GET(own=_html({"validator": 200}))]),
    Route(name="validation:sign", build=_open, kwargs=_study_kw, checks=[GET(own=_html({"validator": 200}))]),
    Route(name="validation:stain", build=_open, kwargs=_study_kw, checks=[GET(own=_html({"stain": 200}))]),
    Route(name="validation:stain-field-image", build=_stain_bench,
          kwargs=lambda o: {"study_id": o["study"].pk, "field_id": o["field"].public_id},
          checks=[GET(own=_html({"stain": 200}))]),
    Route(name="validation:stain-image", build=_stain_bench, kwargs=_stain_image_kw,
          checks=[GET(own=_html({"stain": 200}))]),
    Route(name="validation:report", build=_unblinded, kwargs=_study_kw,
          checks=[GET(own=_html({"center_admin": 200, "validator": 200}))]),
    Route(name="validation:report-csv", build=_unblinded, kwargs=_study_kw,
          checks=[GET(own=_html({"center_admin": 200, "validator": 200}))]),
    Route(name="validation:report-zip", build=_unblinded, kwargs=_study_kw,
          checks=[GET(own=_html({"center_admin": 200, "validator": 200}))]),
    Route(name="validation:report-pdf", build=_unblinded, kwargs=_study_kw,
          checks=[GET(own=_html({"center_admin": 200, "validator": 200}))]),
    Route(name="validation:cell-crop", build=_open,
          kwargs=lambda o: {"study_id": o["study"].pk, "cell_id": o["cell"].public_id},
          checks=[GET(own=_html({"validator": 200, "stain": 200, "center_admin": 200}))]),
    Route(name="validation:field-image", build=_whole_field,
          kwargs=lambda o: {"study_id": o["study"].pk, "field_id": o["field"].public_id},
          checks=[GET(own=_html({"validator": 200}))]),
]
