"""Access declarations for imaging pages and API (see tests/access_matrix.py).

Readers (uploader, reviewer, center admin) see their centers' patients, sessions and images; writers
(uploader, center admin) create and change them. Validators and stain technicians are blinded: lists
answer 403, objects 404. Other centers' objects are always 404.
"""
from portal.testing.imaging import make_imaging, png_upload
from tests.access_matrix import GET, PATCH, POST, Route, statuses


def build(cast, cc):
    return make_imaging(cc)


LIST_API = statuses(200, validator=403, stain=403, auditor=403, anonymous=401)
LIST_HTML = statuses(200, validator=403, stain=403, auditor=403, anonymous=302)
READ_API = statuses(200, validator=404, stain=404, auditor=404, anonymous=401)
WRITE_OBJ_API = statuses(404, uploader=200, center_admin=200, anonymous=401)
CREATE_API = statuses(403, uploader=201, center_admin=201, anonymous=401)
# A writer of the other center naming this center's object: 404; users without a writing role: 403.
CREATE_API_OTHER = {"uploader": 404, "center_admin": 404, "reviewer": 403, "validator": 403, "stain": 403}
WRITE_PAGE = statuses(403, uploader=200, center_admin=200, anonymous=302)
# Forms refuse another center's object as an invalid choice (200, form with errors, nothing created).
WRITE_PAGE_OTHER = {"uploader": 200, "center_admin": 200, "reviewer": 403, "validator": 403, "stain": 403}


def pk(name):
    return lambda objs: {"pk": objs[name].pk}


ROUTES = [
    # --- API ---
    Route(name="api-patient-list", build=build, list_ids=lambda o: [o["patient"].pk], checks=[
        GET(own=LIST_API),
        POST(own=CREATE_API, other=CREATE_API_OTHER, payload=lambda o: {"center": str(o["center"].pk)}),
    ]),
    Route(name="api-patient-detail", build=build, kwargs=pk("patient"), checks=[GET(own=READ_API)]),
    Route(name="api-session-list", build=build, list_ids=lambda o: [o["session"].pk], checks=[
        GET(own=LIST_API),
        POST(own=CREATE_API, other=CREATE_API_OTHER,
             payload=lambda o: {"patient": str(o["patient"].pk), "acquisition_date": "2024-05-06"}),
    ]),
    Route(name="api-session-detail", build=build, kwargs=pk("session"), checks=[
        GET(own=READ_API),
        PATCH(own=WRITE_OBJ_API, payload=lambda o: {"microscope": "Nikon Ti2"}),
    ]),
    Route(name="api-session-image-upload", build=build, kwargs=pk("session"), checks=[
        POST(own=statuses(404, uploader=201, center_admin=201, anonymous=401), fmt="multipart",
             payload=lambda o: {"files": [png_upload("new.png")]}),
    ]),
    Route(name="api-image-list", build=build, list_ids=lambda o: [o["image"].pk], checks=[GET(own=LIST_API)]),
    Route(name="api-image-detail", build=build, kwargs=pk("image"), checks=[
        GET(own=READ_API),
        PATCH(own=WRITE_OBJ_API, payload=lambda o: {"um_per_px": 0.31}),
    ]),
    Route(name="api-image-file", build=build, kwargs=pk("image"), checks=[GET(own=READ_API)]),
    Route(name="api-image-display", build=build, kwargs=pk("image"), checks=[GET(own=READ_API)]),
    Route(name="api-image-thumbnail", build=build, kwargs=pk("image"), checks=[GET(own=READ_API)]),
    # --- HTML ---
    Route(name="imaging:patient-list", build=build, list_ids=lambda o: [o["patient"].pk],
          checks=[GET(own=LIST_HTML)]),
    Route(name="imaging:patient-create", build=build, checks=[
        GET(own=WRITE_PAGE, other=None),
        POST(own=statuses(403, uploader=302, center_admin=302, anonymous=302), other=WRITE_PAGE_OTHER,
             fmt="multipart", payload=lambda o: {"center": str(o["center"].pk), "birth_year_bucket": ""}),
    ]),
    Route(name="imaging:session-list", build=build, list_ids=lambda o: [o["session"].pk],
          checks=[GET(own=LIST_HTML)]),
    Route(name="imaging:session-create", build=build, checks=[
        GET(own=WRITE_PAGE, other=None),
        POST(own=statuses(403, uploader=302, center_admin=302, anonymous=302), other=WRITE_PAGE_OTHER,
             fmt="multipart", payload=lambda o: {
                 "patient": str(o["patient"].pk), "acquisition_date": "2024-05-06", "modality": "brightfield",
                 "stage_rotation": "0", "notes": ""}),
    ]),
    Route(name="imaging:session-detail", build=build, kwargs=pk("session"), list_ids=lambda o: [o["image"].pk],
          checks=[GET(own=statuses(200, validator=404, stain=404, auditor=404, anonymous=302))]),
    Route(name="imaging:session-upload", build=build, kwargs=pk("session"),
          checks=[GET(own=statuses(404, uploader=200, center_admin=200, anonymous=302))]),
    Route(name="imaging:session-stage", build=build, kwargs=pk("session"), checks=[
        GET(own=statuses(404, uploader=200, center_admin=200, anonymous=302)),
        POST(own=statuses(404, uploader=302, center_admin=302, anonymous=302), fmt="multipart",
             payload=lambda o: {"mode": "form", f"x-{o['image'].pk}": "100", f"y-{o['image'].pk}": "-50"}),
    ]),
    Route(name="imaging:image-um-per-px", build=build, kwargs=pk("image"), checks=[
        POST(own=statuses(404, uploader=302, center_admin=302, anonymous=302), fmt="multipart",
             payload=lambda o: {"um_per_px": "0.3"}),
    ]),
]
