"""Access declarations of the model registry (API and page). Center admins manage their center's models."""
from django.core.files.uploadedfile import SimpleUploadedFile

from portal.testing.jobs import build_job_world
from tests.access_matrix import DELETE, GET, POST, Route, statuses

ROUTES = [
    Route(
        name="api-models", build=build_job_world, list_ids=lambda o: [o["model"].pk],
        checks=[
            # validators and stain technicians work blinded to the model: no registry (404)
            GET(own=statuses(200, auditor=403, anonymous=401, superuser=200, validator=404, stain=404),
                other=statuses(200, validator=404, stain=404)),
            # a non-zip upload: admins reach the bundle check (400), other roles are refused first (403)
            POST(payload=lambda o: {"file": SimpleUploadedFile("m.zip", b"not a zip"),
                                    "center_id": str(o["center"].pk)},
                 fmt="multipart", own=statuses(403, center_admin=400, anonymous=401), other=404),
        ],
    ),
    Route(name="api-model-detail", build=build_job_world, kwargs=lambda o: {"model_version_id": o["spare_model"].pk},
          checks=[GET(own=statuses(200, auditor=403, anonymous=401, validator=404, stain=404)),
                  DELETE(own=statuses(403, center_admin=204, anonymous=401, validator=404, stain=404))]),
    Route(name="api-model-activate", build=build_job_world,
          kwargs=lambda o: {"model_version_id": o["spare_model"].pk},
          checks=[POST(payload=lambda o: {"center_id": str(o["center"].pk)},
                       own=statuses(403, center_admin=200, anonymous=401, validator=404, stain=404))]),
    Route(name="mlmodels:list", build=build_job_world, list_ids=lambda o: [o["model"].pk], own_ids_must_appear=False,
          checks=[GET(own=statuses(200, auditor=404, anonymous=302, validator=404, stain=404),
                      other=statuses(200, validator=404, stain=404))]),
    Route(name="mlmodels:activate", build=build_job_world,
          kwargs=lambda o: {"model_version_id": o["spare_model"].pk},
          checks=[POST(payload=lambda o: {"center_id": str(o["center"].pk)}, fmt="multipart",
                       own=statuses(404, uploader=403, reviewer=403, center_admin=302, anonymous=302))]),
]
