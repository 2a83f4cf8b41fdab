"""Access declarations of the jobs routes (API and HTML)."""
from portal.testing.jobs import build_job_world
from tests.access_matrix import GET, POST, Route, statuses

WRITERS = dict(uploader=201, reviewer=201, center_admin=201)

ROUTES = [
    Route(
        name="api-jobs", build=build_job_world, list_ids=lambda o: [o["job"].pk],
        checks=[
            GET(own=statuses(200, auditor=403, anonymous=401), other=200),
            POST(payload=lambda o: {"session_id": str(o["fresh_session"].pk)},
                 own=statuses(403, **WRITERS, anonymous=401), other=404),
        ],
    ),
    Route(name="api-job-detail", build=build_job_world, kwargs=lambda o: {"job_id": o["job"].pk},
          checks=[GET(own=statuses(200, auditor=403, anonymous=401))]),
    Route(name="api-job-cancel", build=build_job_world, kwargs=lambda o: {"job_id": o["job"].pk},
          checks=[POST(payload=lambda o: {},
                       own=statuses(403, uploader=200, reviewer=200, center_admin=200, anonymous=401))]),
    Route(name="api-session-jobs", build=build_job_world, kwargs=lambda o: {"session_id": o["session"].pk},
          checks=[GET(own=statuses(200, auditor=403, anonymous=401))]),
    Route(name="jobs:detail", build=build_job_world, kwargs=lambda o: {"job_id": o["job"].pk},
          checks=[GET(own=statuses(200, auditor=404, anonymous=302))]),
    Route(name="jobs:cancel", build=build_job_world, kwargs=lambda o: {"job_id": o["job"].pk},
          checks=[POST(payload=lambda o: {},
                       own=statuses(403, uploader=302, reviewer=302, center_admin=302, auditor=404,
                                    anonymous=302))]),
    Route(name="jobs:session-start", build=build_job_world,
          kwargs=lambda o: {"session_id": o["fresh_session"].pk},
          checks=[POST(payload=lambda o: {},
                       own=statuses(403, uploader=302, reviewer=302, center_admin=302, auditor=404,
                                    anonymous=302))]),
]
