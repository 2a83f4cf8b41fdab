"""Access declarations of the results API (detections are read only by members of the image's center)."""
from portal.testing.jobs import build_job_world
from tests.access_matrix import GET, Route, statuses

ROUTES = [
    Route(name="api-image-result-sets", build=build_job_world, kwargs=lambda o: {"image_id": o["image"].pk},
          list_ids=lambda o: [o["result_set"].pk],
          checks=[GET(own=statuses(200, auditor=403, anonymous=401))]),
    Route(name="api-result-set-detail", build=build_job_world,
          kwargs=lambda o: {"result_set_id": o["result_set"].pk},
          checks=[GET(own=statuses(200, auditor=403, anonymous=401))]),
]
