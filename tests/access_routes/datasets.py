"""Access declarations of the datasets routes (API and HTML). Administrators manage; reviewers read."""
from portal.testing.training import build_training_world
from tests.access_matrix import GET, POST, PUT, Route, statuses

READERS = dict(reviewer=200, center_admin=200)

ROUTES = [
    Route(name="api-session-training-use", build=build_training_world,
          kwargs=lambda o: {"session_id": o["training_session"].pk},
          checks=[GET(own=statuses(404, **READERS, auditor=403, anonymous=401)),
                  PUT(payload=lambda o: {"consent": True},
                      own=statuses(403, center_admin=200, anonymous=401))]),
    Route(name="api-datasets", build=build_training_world, list_ids=lambda o: [o["dataset_version"].pk],
          checks=[GET(own=statuses(403, **READERS, anonymous=401)),
                  POST(payload=lambda o: {"center_id": str(o["center"].pk), "name": "matrix",
                                          "session_ids": [str(o["training_session"].pk)]},
                       own=statuses(403, center_admin=201, anonymous=401), other=404)]),
    Route(name="api-dataset-detail", build=build_training_world,
          kwargs=lambda o: {"dataset_version_id": o["dataset_version"].pk},
          checks=[GET(own=statuses(404, **READERS, auditor=403, anonymous=401))]),
    Route(name="api-dataset-export", build=build_training_world,
          kwargs=lambda o: {"dataset_version_id": o["dataset_version"].pk},
          checks=[GET(own=statuses(404, **READERS, auditor=403, anonymous=401))]),
    Route(name="datasets:index", build=build_training_world, list_ids=lambda o: [o["dataset_version"].pk],
          checks=[GET(own=statuses(403, **READERS, anonymous=302))]),
    Route(name="datasets:create", build=build_training_world,
          checks=[POST(payload=lambda o: {"center_id": str(o["center"].pk), "name": "matrix",
                                          "session_ids": [str(o["training_session"].pk)]}, fmt="multipart",
                       own=statuses(403, center_admin=302, auditor=404, anonymous=302), other=404)]),
    Route(name="datasets:session-use", build=build_training_world,
          kwargs=lambda o: {"session_id": o["training_session"].pk},
          checks=[POST(payload=lambda o: {"consent": "on"}, fmt="multipart",
                       own=statuses(403, center_admin=302, auditor=404, anonymous=302))]),
    Route(name="datasets:detail", build=build_training_world,
          kwargs=lambda o: {"dataset_version_id": o["dataset_version"].pk},
          checks=[GET(own=statuses(404, **READERS, anonymous=302))]),
    Route(name="datasets:export", build=build_training_world,
          kwargs=lambda o: {"dataset_version_id": o["dataset_version"].pk},
          checks=[GET(own=statuses(404, **READERS, anonymous=302))]),
]
