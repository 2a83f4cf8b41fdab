"""Every list endpoint (``/api/v1/`` lists and HTML list pages) makes a bounded number of queries that
does not grow with the number of rows it shows.

Each case builds what its list shows once with one row and once with ``MANY`` more rows (a second
container for per-object lists), requests the list as a user who sees the rows, and asserts the same
query count both times, at most the case's budget, and that the new rows are in the response. Budgets
include the five queries of the session middleware (read the session and the user; save the session in
a savepoint).
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.access_matrix import collect_routes

MANY = 3


@dataclass(frozen=True)
class ListCase:
    """``make(cast, n)`` creates ``n`` rows of the list (in a fresh container where the list belongs to
    one) and returns the URL and the strings (ids, codes) of those rows that the response must show."""

    route: str
    user: str  # attribute of ``cast.a`` ("uploader", "admin", ...) or of ``cast`` ("auditor")
    make: Callable[..., tuple[str, list[str]]]
    max_queries: int
    label: str = ""

    @property
    def id(self) -> str:
        return self.route + (f"-{self.label}" if self.label else "")


# --- row factories ------------------------------------------------------------------------------------

def _session(cc):
    from portal.testing.review import make_session

    return make_session(cc)


def _image(cc, session=None):
    from portal.testing.review import make_image

    return make_image(cc, session=session, width=64, height=48)


def _result_set(image, n: int = 1):
    from portal.testing.review import circle_cells, make_result_set

    return make_result_set(image, cells=circle_cells(n, width=image.width, height=image.height, radius=4))


def _centers(cast, n):
    from portal.centers.models import Role
    from portal.centers.services import center_create, membership_grant

    codes = []
    for _ in range(n):
        center = center_create(code=f"Q{uuid.uuid4().hex[:6].upper()}", name="Query center")
        membership_grant(user=cast.a.admin, center=center, role=Role.CENTER_ADMIN)
        codes.append(center.code)
    return reverse("api-center-list"), codes


def _patients(cast, n):
    from portal.testing.imaging import make_patient

    return None, [make_patient(cast.a).code for _ in range(n)]


def _sessions(cast, n):
    sessions = []
    for _ in range(n):
        session = _session(cast.a)
        _image(cast.a, session)
        sessions.append(session)
    return None, [str(s.pk) for s in sessions]


def _images(cast, n):
    return None, [str(_image(cast.a).pk) for _ in range(n)]


def _session_images(cast, n):
    session = _session(cast.a)
    images = [_image(cast.a, session) for _ in range(n)]
    for image in images:
        _result_set(image)
    return session, [str(i.pk) for i in images]


def _models(cast, n):
    from portal.testing.jobs import make_model_version

    return None, [str(make_model_version(center=cast.a.center).pk) for _ in range(n)]


def _jobs(cast, n):
    from portal.testing.jobs import build_job_world

    return None, [str(build_job_world(cast, cast.a)["job"].pk) for _ in range(n)]


def _session_jobs(cast, n):
    from portal.jobs.models import InferenceJob, JobImage
    from portal.testing.jobs import make_model_version

    session = _session(cast.a)
    image = _image(cast.a, session)
    model_version = make_model_version(center=cast.a.center)
    jobs = []
    for _ in range(n):
        job = InferenceJob.objects.create(center=cast.a.center, session=session, model_version=model_version,
                                          images_total=1)
        JobImage.objects.create(job=job, image=image)
        jobs.append(job)
    return reverse("api-session-jobs", kwargs={"session_id": session.pk}), [str(j.pk) for j in jobs]


def _result_sets(cast, n):
    from portal.results.models import ResultSet, ResultSetStatus
    from portal.testing.jobs import make_model_version

    image = _image(cast.a)
    sets = []
    for _ in range(n):
        result_set = ResultSet.objects.create(center=cast.a.center, image=image, status=ResultSetStatus.COMPLETE,
                                              model_version=make_model_version(center=cast.a.center))
        sets.append(result_set)
    return reverse("api-image-result-sets", kwargs={"image_id": image.pk}), [str(s.pk) for s in sets]


def _detections(cast, n):
    result_set = _result_set(_image(cast.a), n)
    ids = [str(pk) for pk in result_set.detections.values_list("pk", flat=True)]
    return reverse("api-result-set-detail", kwargs={"result_set_id": result_set.pk}), ids


def _review_detections(cast, n):
    image = _image(cast.a)
    result_set = _result_set(image, n)
    ids = [str(pk) for pk in result_set.detections.values_list("pk", flat=True)]
    return reverse("api-review-image", kwargs={"image_id": image.pk}), ids


def _studies(cast, n, **kw):
    from portal.testing import validation as vt

    return None, [str(vt.make_draft_study(cast, cast.a, **kw).pk) for _ in range(n)]


def _open_studies(cast, n):
    from portal.testing import validation as vt

    return None, [str(vt.make_open_study(cast, cast.a).pk) for _ in range(n)]


def _picks(cast, n):
    from portal.testing import validation as vt

    study = vt.make_draft_study(cast, cast.a, picks=[(20 + 30 * k, 250) for k in range(n)])
    return study, [str(p.pk) for p in study.picks.all()]


def _cells(cast, n):
    """An open study whose embryologist picked ``n`` cells (the model's 10 picks come on top)."""
    from portal.testing import validation as vt

    study = vt.make_open_study(cast, cast.a, picks=[(20 + 30 * k, 250) for k in range(n)])
    return study, [str(c.public_id) for c in study.cells.all()]


def _study_fields(cast, n, *, design="picked_cells", open_study=False):
    """A study of one session with ``n`` images (each with model output): ``n`` fields."""
    from portal.testing import validation as vt
    from portal.validation import services

    cc = cast.a
    session = vt.make_session(cc)
    model_version = vt.make_model_version()
    for _ in range(n):
        vt.make_result_set(vt.make_image(session, width=200, height=150), model_version)
    study = services.study_create(actor=cc.admin, center=cc.center, name=f"Fields {uuid.uuid4().hex[:6]}",
                                  model_version=model_version, sessions=[session], design=design)
    if open_study:
        for name in ("validator", "validator2"):
            services.study_validator_add(actor=cc.admin, study=study, user=getattr(cc, name))
        study = services.study_open(actor=cc.admin, study=study)
    return study, [f.public_id for f in services.study_fields_ensure(study=study)]


def _open_fields(cast, n):
    return _study_fields(cast, n, design="whole_field", open_study=True)


def _stain_fields(cast, n):
    """An open whole-field study of ``n`` fields, each with a PRM1 fluorescence image (ids of both)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from portal.testing import staining
    from portal.validation import services

    study, field_ids = _open_fields(cast, n)
    ids = list(field_ids)
    for field in study.fields.all():
        upload = SimpleUploadedFile("prm1.png", staining.fluorescence_png(width=200, height=150))
        ids += [str(s.pk) for s in services.stain_image_upload(actor=cast.a.stain, study=study, field=field,
                                                               channel="prm1", upload=upload)]
    return study, ids


def _pick_list(cast, n, *, api=False):
    """A review pick list of ``n`` accepted round spermatids (shown by detection id in the API, by
    position on the page)."""
    from portal.review.services import decision_set, pick_list_create

    image = _image(cast.a)
    result_set = _result_set(image, n)
    for detection in result_set.detections.all():
        decision_set(user=cast.a.reviewer, detection=detection, verdict="accept", class_name="round_spermatid")
    pick_list = pick_list_create(user=cast.a.reviewer, session=image.session)
    items = pick_list.items.all()
    return pick_list, [str(i.detection_id) if api else f"{i.centroid_x_px:.1f}" for i in items]


_pick_list_api = partial(_pick_list, api=True)


def _audit_events(cast, n):
    from portal.audit.services import audit_record

    ids = [f"query-{uuid.uuid4().hex[:12]}" for _ in range(n)]
    for object_id in ids:
        audit_record(actor=cast.a.admin, action="test.list", center=cast.a.center, object_type="test",
                     object_id=object_id)
    return reverse("audit:event-list"), ids


def _dataset_versions(cast, n):
    """Dataset version rows (no files: the lists show metadata only)."""
    from portal.datasets.models import DatasetLine, DatasetVersion

    line = DatasetLine.objects.create(center=cast.a.center, name=f"q-{uuid.uuid4().hex[:8]}", created_by=cast.a.admin)
    rows = [DatasetVersion.objects.create(line=line, center=cast.a.center, number=k + 1, storage_prefix=f"q/{k}",
                                          manifest={}, manifest_sha256="0" * 64, created_by=cast.a.admin,
                                          counts={"images": 1, "instances": 2,
                                                  "images_per_split": {"train": 1, "val": 0, "test": 0}})
            for k in range(n)]
    return None, [str(v.pk) for v in rows]


def _training_jobs(cast, n):
    from portal.datasets.models import DatasetVersion
    from portal.testing.jobs import make_model_version
    from portal.training.models import TrainingJob

    _, ids = _dataset_versions(cast, 1)
    version = DatasetVersion.objects.get(pk=ids[0])
    jobs = [TrainingJob.objects.create(center=cast.a.center, dataset_version=version, max_iter=5,
                                       base_model=make_model_version(center=cast.a.center),
                                       candidate=make_model_version(center=cast.a.center))
            for _ in range(n)]
    return None, [str(j.pk) for j in jobs]


def _at(name, make, key="pk"):
    """A factory of a per-object list: ``make`` returns (container, ids); the URL names the container."""
    def build(cast, n):
        container, ids = make(cast, n)
        return reverse(name, kwargs={key: container.pk}), ids
    return build


def _top(name, make):
    """A factory of a top-level list: ``make`` adds rows; the URL is the list's."""
    def build(cast, n):
        _, ids = make(cast, n)
        return reverse(name), ids
    return build


CASES = [
    # Budgets as measured (PostgreSQL and SQLite alike) since a request reads its user's memberships once
    # (``portal.centers.selectors.memberships_cached``): tighten them when a list gets cheaper.
    # --- API -------------------------------------------------------------------------------------------
    ListCase("api-center-list", "admin", _centers, 9),
    ListCase("api-patient-list", "uploader", _top("api-patient-list", _patients), 9),
    ListCase("api-session-list", "uploader", _top("api-session-list", _sessions), 9),
    ListCase("api-image-list", "uploader", _top("api-image-list", _images), 19),  # +5 (auditbatch): a read's pending row and its fold
    ListCase("api-models", "admin", _top("api-models", _models), 11),
    ListCase("api-jobs", "reviewer", _top("api-jobs", _jobs), 11),
    ListCase("api-session-jobs", "reviewer", _session_jobs, 14),
    ListCase("api-image-result-sets", "reviewer", _result_sets, 12),
    ListCase("api-result-set-detail", "reviewer", _detections, 18),  # +1 (auditbatch, auditfix): whether read events are pending
    # +2 (issue 16): the reviewer's own mask corrections and the session's image-done marks
    ListCase("api-review-image", "reviewer", _review_detections, 22),  # +1 (auditbatch, auditfix): whether read events are pending
    ListCase("api-validation-study-list", "admin", _top("api-validation-study-list", _studies), 11),
    ListCase("api-validation-study-picks", "uploader", _at("api-validation-study-picks", _picks, "study_id"),
             12),
    ListCase("api-review-picklist", "reviewer", _at("api-review-picklist", _pick_list_api, "pick_list_id"), 16),  # +1 (auditbatch, auditfix): whether read events are pending
    ListCase("api-validation-study-fields", "admin", _at("api-validation-study-fields", _study_fields, "study_id"),
             16),
    ListCase("api-validation-my-fields", "validator", _at("api-validation-my-fields", _open_fields, "study_id"),
             9),
    ListCase("api-validation-my-studies", "validator", _top("api-validation-my-studies", _open_studies), 7),
    ListCase("api-validation-my-cells", "validator", _at("api-validation-my-cells", _cells, "study_id"), 14),
    ListCase("api-validation-stain-studies", "stain", _top("api-validation-stain-studies", _open_studies), 8),
    ListCase("api-validation-stain-cells", "stain", _at("api-validation-stain-cells", _cells, "study_id"), 10),
    # stain bench (new): session 5 + study, stain centers x2, study-center check, fields, stain images
    ListCase("api-validation-stain-fields", "stain", _at("api-validation-stain-fields", _stain_fields, "study_id"),
             11),
    # --- HTML ------------------------------------------------------------------------------------------
    # Every HTML page: +1 for the nav's unread-notification count (issue 16). Pages that show the clinic's
    # file names (imaging:session-detail, review:session-detail, review:picklist): +2 for
    # ``display_names_for`` (readable centers, blinded sessions); the pick list +1 more for the
    # stage-position link's ``user_may``.
    ListCase("imaging:patient-list", "uploader", _top("imaging:patient-list", _patients), 11),
    ListCase("imaging:session-list", "uploader", _top("imaging:session-list", _sessions), 11),
    ListCase("imaging:session-detail", "uploader", _at("imaging:session-detail", _session_images), 24),  # +5 (auditbatch): a read's pending row and its fold
    ListCase("review:picklist", "reviewer", _at("review:picklist", _pick_list, "pick_list_id"), 20),  # +1 (auditbatch, auditfix): whether read events are pending
    ListCase("mlmodels:list", "admin", _top("mlmodels:list", _models), 17),
    ListCase("review:session-list", "reviewer", _top("review:session-list", _sessions), 11),
    ListCase("review:session-detail", "reviewer", _at("review:session-detail", _session_images), 28),  # +1 (issue 16): image-done marks on the cards; +1 (auditbatch, auditfix): whether read events are pending
    ListCase("validation:index", "admin", _top("validation:index", _studies), 12, label="admin"),
    ListCase("validation:index", "validator", _top("validation:index", _open_studies), 10, label="validator"),
    ListCase("validation:index", "stain", _top("validation:index", _open_studies), 11, label="stain"),
    ListCase("audit:event-list", "auditor", _audit_events, 18),  # +2 (auditbatch, auditfix): whether read events are pending, before the list and in the audit.view write
    # datasets and training (issue 17), as measured (HTML pages +1 for the nav's unread count): the training page adds a constant per managed center
    # (active model, rollback target, last promotions) and the start form's registry and session lists
    ListCase("api-datasets", "reviewer", _top("api-datasets", _dataset_versions), 11),
    ListCase("api-training-jobs", "reviewer", _top("api-training-jobs", _training_jobs), 11),
    ListCase("datasets:index", "admin", _top("datasets:index", _dataset_versions), 13),
    ListCase("training:index", "admin", _top("training:index", _training_jobs), 23),
]


def _user(cast, name):
    return getattr(cast, name) if name in ("auditor", "superuser") else getattr(cast.a, name)


def _count(client, url) -> tuple[int, str, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(queries), response.content.decode("utf-8", "replace"), [q["sql"] for q in queries]


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_list_makes_the_same_bounded_number_of_queries_for_one_row_and_many(case: ListCase, cast, client):
    client.force_login(_user(cast, case.user))
    url_one, ids_one = case.make(cast, 1)
    client.get(url_one)  # first request of the session (login bookkeeping) is not the list's cost
    one, _, sql_one = _count(client, url_one)
    url_many, ids_many = case.make(cast, MANY)
    many, body, sql_many = _count(client, url_many)
    assert len(ids_many) >= MANY and all(i in body for i in ids_many), "the new rows are not in the list"
    assert many == one, f"{case.id}: {one} queries for one row, {many} for {MANY} more:\n" + "\n".join(
        sql for sql in sql_many if sql not in sql_one)
    assert one <= case.max_queries, f"{case.id}: {one} queries, budget {case.max_queries}:\n" + "\n".join(sql_one)


def test_every_list_route_of_the_access_matrix_has_a_query_count_case():
    lists = {r.name for r in collect_routes() if r.list_ids}
    covered = {c.route for c in CASES}
    assert lists <= covered, f"list routes without a query-count case here: {sorted(lists - covered)}"


def _token_client(user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


def test_the_token_authenticated_session_list_makes_four_queries(cast):
    """The API as scripts use it (``benchmarks/bench_api.py``): the token with its user, the user's
    memberships (once, for the gate and the center filter), the page's count and the page."""
    for _ in range(MANY):
        _sessions(cast, 1)
    api = _token_client(cast.a.uploader)
    count, body, sql = _count(api, reverse("api-session-list"))
    assert count == 4, "\n".join(sql)
    assert body.count('"acquisition_date"') == MANY


def test_a_token_authenticated_thumbnail_makes_three_queries_besides_its_audit_event(cast, storage, settings):
    """The token with its user, the image, the user's memberships; then the audit event of the read (its
    own statements: ``portal.audit``), at most as many as today. Measured between folds (a read that
    folds pays for the reads before it: ``portal.audit.tests.test_pending_reads``)."""
    from django.core.files.base import ContentFile

    settings.AUDIT_READ_FOLD_EVERY = 10**9

    image = _image(cast.a)
    image.thumbnail_file.save("t.png", ContentFile(b"\x89PNG\r\n\x1a\n" + b"0" * 64), save=True)
    api = _token_client(cast.a.uploader)
    url = reverse("api-image-thumbnail", kwargs={"pk": image.pk})
    assert api.get(url).status_code == 200  # the first audit event of all also starts the chain
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200, response.status_code
    sql = [q["sql"] for q in queries]
    own = [s for s in sql if '"audit_' not in s and s not in ("BEGIN", "COMMIT") and not s.startswith("SAVEPOINT")
           and not s.startswith("RELEASE SAVEPOINT")]
    assert len(own) == 3, "\n".join(sql)
    assert len(sql) <= 9, "\n".join(sql)
