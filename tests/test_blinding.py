"""Blinding of validation studies, checked against every route of the URL configuration.

Every validation route (HTML and API, found by walking Django's URL resolver, so a new route is
covered automatically) is requested by a validator of an open study with every method its view
implements; no response may contain a model field name (as a JSON key) or any model value (score,
class, detection/result-set/model-version id). Every other route of the project that takes an image,
session, result-set or detection id is requested with the blinded study's ids and must not leak them.
"""
from __future__ import annotations

import json
import re

import pytest
from django.urls import get_resolver, reverse

from portal.results.models import Detection
from portal.testing import validation as vt
from portal.testing.cast import PASSWORD
from tests.access_matrix import iter_url_entries

FORBIDDEN_KEYS = {
    "score", "scores", "class", "class_name", "classes", "model", "model_version", "model_class", "model_score",
    "model_positive", "job", "job_id", "detection", "detection_id", "detections", "threshold", "score_threshold",
    "candidate_threshold", "from_model", "from_embryologist", "from_validator", "result_set", "index",
}
CLASS_NAMES = ["round_spermatid", "spermatocyte", "elongated_spermatid", "spermatozoon", "erythrocyte", "leukocyte"]


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}


def _keys(data):
    if isinstance(data, dict):
        for key, value in data.items():
            yield key
            yield from _keys(value)
    elif isinstance(data, list):
        for item in data:
            yield from _keys(item)


def _forbidden_values(study, *, with_model_version: bool = True) -> list[str]:
    detections = Detection.objects.filter(result_set__image__session__in=study.sessions.all())
    values = []
    for d in detections:
        values += [str(d.pk), str(d.pk).replace("-", ""), repr(d.score), f"{d.score:.4f}", f"{d.score:.3f}"]
        values += [str(d.result_set_id)]
    mv = study.model_version
    if not with_model_version:  # the model registry may list versions; what they said about cells is the secret
        return values + [study.model_output_sha256]
    values += [str(mv.pk), mv.version, mv.name, mv.weights_sha256, study.model_output_sha256]
    return values


def _name_the_files(study) -> list[str]:
    """Give the study's images clinic file names (``Image.original_name``): no blinded response may show them."""
    from portal.imaging.models import Image

    names = []
    for image in Image.objects.filter(session__in=study.sessions.all()):
        image.original_name = f"clinic-file-{image.pk.hex[:12]}.tif"
        image.save(update_fields=["original_name"])
        names.append(image.original_name)
    return names


def _validation_entries():
    return [e for e in iter_url_entries() if e.key.startswith("validation:") or (e.name or "").startswith("api-validation-")]


def _view_methods(path: str) -> list[str]:
    match = get_resolver().resolve(path)
    view_class = getattr(match.func, "view_class", None) or getattr(match.func, "cls", None)
    if view_class is None:
        return ["get"]
    return [m for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m)]


def _fill(path: str, values: dict) -> str | None:
    def repl(m):
        name = m.group(1).split(":")[-1]
        return str(values[name]) if name in values else "\x00"

    filled = "/" + re.sub(r"<([^>]+)>", repl, path)
    return None if "\x00" in filled else filled


PAYLOADS = {
    "api-validation-my-cell": {"morphology": "yes", "prm1": "pos"},
    "api-validation-my-missed": {"x_px": 390, "y_px": 290},
    "validation:sign": {"password": PASSWORD},
}


def _check(response, forbidden_values, *, where):
    content_type = response.get("Content-Type", "")
    if content_type.startswith("image/"):
        return
    body = response.content.decode("utf-8", "replace")
    for value in forbidden_values:
        assert value not in body, f"{where}: response contains model value {value!r}"
    if content_type.startswith("application/json") and body:
        keys = set(_keys(json.loads(body)))
        assert not keys & FORBIDDEN_KEYS, f"{where}: response has model field(s) {sorted(keys & FORBIDDEN_KEYS)}"


@pytest.mark.django_db
def test_no_validator_response_contains_a_model_field_or_value(cast, client):
    picked = vt.make_open_study(cast, cast.a)
    whole = vt.make_open_study(cast, cast.a, design="whole_field")
    forbidden = _forbidden_values(picked) + _forbidden_values(whole) + CLASS_NAMES
    forbidden += _name_the_files(picked) + _name_the_files(whole)
    client.force_login(cast.a.validator)
    entries = _validation_entries()
    assert len(entries) >= 20
    requested = 0
    for study in (picked, whole):
        membership = study.validators.get(user=cast.a.validator)
        values = {
            "study_id": study.pk, "cell_id": membership.assignments.first().cell.public_id,
            "field_id": study.fields.first().public_id, "username": cast.a.validator.username,
            "pick_id": 1, "stain_image_id": "00000000-0000-4000-8000-000000000000",
        }
        for entry in entries:
            path = _fill(entry.path, values)
            assert path is not None, f"add a value for the URL parameters of {entry.key} ({entry.path})"
            for method in _view_methods(path):
                payload = PAYLOADS.get(entry.key, {})
                if method == "get":
                    response = client.get(path)
                elif entry.key.startswith("validation:"):
                    response = getattr(client, method)(path, payload)
                else:
                    response = getattr(client, method)(path, json.dumps(payload), content_type="application/json")
                assert response.status_code < 500, f"{method.upper()} {path}: {response.status_code}"
                _check(response, forbidden, where=f"{method.upper()} {path}")
                requested += 1
    assert requested >= 40


def _stain_payload(key: str, cell_id: str):
    """Request bodies of the stain bench's writes (method, body, multipart?) for the stain scan."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from portal.testing import staining

    if key == "api-validation-stain-images":
        return {"channel": "pna", "file": SimpleUploadedFile("pna.png", staining.fluorescence_png(seed=9))}, True
    if key == "api-validation-stain-image-registration":
        return {"method": "auto"}, False
    if key == "api-validation-stain-import":
        return {"csv": f"cell,prm1,pna\n{cell_id},pos,neg\n", "confirm": True}, False
    if key == "api-validation-stain-cell":
        return {"prm1": "pos"}, False
    return {}, False


@pytest.mark.django_db
def test_no_stain_technician_response_contains_a_model_field_or_value(cast, client):
    """The stain bench (fluorescence images, registration, keyboard calls, CSV import) and every other
    validation route, requested by the study's stain technician with real ids and bodies: no model field
    or value in any answer, and the cells come in the order of their random ids, not the model's."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from portal.testing import staining
    from portal.validation import services

    picked = vt.make_open_study(cast, cast.a)
    whole = vt.make_open_study(cast, cast.a, design="whole_field")
    forbidden = _forbidden_values(picked) + _forbidden_values(whole) + CLASS_NAMES
    client.force_login(cast.a.stain)
    entries = _validation_entries()
    requested = 0
    for study in (picked, whole):
        field = study.fields.first()
        [stain_image] = services.stain_image_upload(
            actor=cast.a.stain, study=study, field=field, channel="prm1",
            upload=SimpleUploadedFile("prm1.png", staining.fluorescence_png()))
        cells = client.get(f"/api/v1/validation/stain/studies/{study.pk}/cells/").json()
        assert [(c["field"], c["cell"]) for c in cells] == sorted((c["field"], c["cell"]) for c in cells)
        values = {"study_id": study.pk, "cell_id": cells[0]["cell"], "field_id": field.public_id,
                  "username": cast.a.stain.username, "pick_id": 1, "stain_image_id": stain_image.pk}
        deletes = []
        for entry in entries:
            path = _fill(entry.path, values)
            assert path is not None, f"add a value for the URL parameters of {entry.key} ({entry.path})"
            for method in _view_methods(path):
                if method == "delete":
                    deletes.append(path)  # after every other request, which still need the objects
                    continue
                payload, multipart = _stain_payload(entry.key, values["cell_id"])
                if method == "get":
                    response = client.get(path)
                elif entry.key.startswith("validation:") or multipart:
                    response = getattr(client, method)(path, payload)
                else:
                    response = getattr(client, method)(path, json.dumps(payload), content_type="application/json")
                assert response.status_code < 500, f"{method.upper()} {path}: {response.status_code}"
                if entry.key.startswith("api-validation-stain") or entry.key.startswith("validation:stain"):
                    assert response.status_code < 300, f"{method.upper()} {path}: {response.status_code}"
                _check(response, forbidden, where=f"{method.upper()} {path}")
                requested += 1
        for path in deletes:
            response = client.delete(path)
            assert response.status_code < 500
            _check(response, forbidden, where=f"DELETE {path}")
    assert requested >= 50


@pytest.mark.django_db
def test_crops_and_cell_lists_look_the_same_for_every_source(cast, client):
    study = vt.make_open_study(cast, cast.a)
    client.force_login(cast.a.validator)
    data = client.get(f"/api/v1/validation/my/studies/{study.pk}/cells/").json()
    lengths, key_sets = set(), set()
    for cell in data["cells"]:
        response = client.get(cell["crop_url"])
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert "Content-Disposition" not in response
        key_sets.add(tuple(sorted(cell)))
        lengths.add(len(cell["cell"]))
    assert len(key_sets) == 1 and len(lengths) == 1


BLINDED_ROLES = ["validator", "stain"]


@pytest.mark.django_db
@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_other_routes_leak_nothing_of_a_blinded_session_to_its_validator(cast, client, role):
    """Validators and stain technicians (issue 14, defect 3) alike: every route, every id."""
    study = vt.make_open_study(cast, cast.a)
    session = study.sessions.first()
    image = session.images.first()
    rs = image.result_sets.first()
    detection = rs.detections.first()
    forbidden = _forbidden_values(study, with_model_version=False) + _name_the_files(study)
    values = {"session_id": session.pk, "image_id": image.pk, "result_set_id": rs.pk, "detection_id": detection.pk,
              "job_id": rs.job_id or detection.pk, "patient_id": session.patient_id}
    client.force_login(getattr(cast.a, role))
    checked = 0
    for entry in iter_url_entries():
        if entry.key.startswith(("validation:", "admin:")) or (entry.name or "").startswith("api-validation-"):
            continue
        if entry.needs_kwargs:
            params = [p.split(":")[-1] for p in re.findall(r"<([^>]+)>", entry.path)]
            if "pk" in params:
                # a pk of what the route names: try every id of the blinded session's objects
                paths = [_fill(entry.path, {**values, "pk": v}) for v in values.values()]
            else:
                paths = [_fill(entry.path, values)]
            paths = [p for p in paths if p is not None]
        else:
            path = "/" + entry.path
            paths = [] if ("(?P" in path or "^" in path) else [path]
        for path in paths:
            response = client.get(path)
            _check(response, forbidden, where=f"GET {path}")
            checked += 1
    assert checked > 5


@pytest.mark.django_db
@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_a_validators_request_for_detections_of_a_blinded_session_returns_404(cast, client, role):
    study = vt.make_open_study(cast, cast.a)
    image = study.sessions.first().images.first()
    rs = image.result_sets.first()
    client.force_login(getattr(cast.a, role))
    assert client.get(f"/api/v1/images/{image.pk}/result-sets/").status_code == 404
    assert client.get(f"/api/v1/result-sets/{rs.pk}/").status_code == 404
    # another validator of the center, not in the study, reads them
    client.force_login(cast.a.reviewer)
    assert client.get(f"/api/v1/result-sets/{rs.pk}/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_a_validator_learns_no_job_or_model_of_a_blinded_session(cast, client, role):
    from portal.jobs.models import InferenceJob, JobStatus

    study = vt.make_open_study(cast, cast.a)
    session = study.sessions.first()
    job = InferenceJob.objects.create(center=cast.a.center, session=session, model_version=study.model_version,
                                      status=JobStatus.SUCCEEDED)
    client.force_login(cast.a.reviewer)
    assert str(job.pk) in client.get(f"/api/v1/sessions/{session.pk}/jobs/").content.decode()
    client.force_login(getattr(cast.a, role))
    assert client.get(f"/api/v1/sessions/{session.pk}/jobs/").status_code == 404
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 404
    listing = client.get("/api/v1/jobs/")
    assert str(job.pk) not in listing.content.decode() and str(study.model_version) not in listing.content.decode()


@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_the_session_page_shows_no_analysis_panel_to_a_blinded_validator(cast, client, role):
    from portal.centers.models import Membership, Role

    study = vt.make_open_study(cast, cast.a)
    session = study.sessions.first()
    url = reverse("imaging:session-detail", kwargs={"pk": session.pk})
    client.force_login(cast.a.reviewer)
    assert 'id="session-jobs"' in client.get(url).content.decode()
    client.force_login(getattr(cast.a, role))
    assert client.get(url).status_code == 404  # a validator-only user sees no imaging at all
    # also a reviewer of the center: the session page opens, but the session stays blinded, so the
    # analysis panel (jobs and models; its API answers 404) is left out instead of showing an error
    Membership.objects.create(user=getattr(cast.a, role), center=cast.a.center, role=Role.REVIEWER)
    response = client.get(url)
    assert response.status_code == 200
    assert 'id="session-jobs"' not in response.content.decode()
    assert client.get(f"/api/v1/sessions/{session.pk}/jobs/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_a_blinded_user_learns_no_model_name_through_another_sessions_jobs(cast, client, role):
    """A job of a session outside the study, run with the study's model, must not name that model to a
    validator or stain technician of the study: while blinded anywhere, job and result listings name no
    model, and the registry is closed."""
    from portal.jobs.models import InferenceJob, JobStatus

    study = vt.make_open_study(cast, cast.a)
    other = vt.make_session(cast.a)
    image = vt.make_image(other)
    rs = vt.make_result_set(image, study.model_version)
    job = InferenceJob.objects.create(center=cast.a.center, session=other, model_version=study.model_version,
                                      status=JobStatus.SUCCEEDED)
    rs.job = job
    rs.save(update_fields=["job"])
    mv = study.model_version
    secrets = [str(mv.pk), mv.name, mv.version, str(mv)]
    client.force_login(getattr(cast.a, role))
    responses = [client.get("/api/v1/jobs/"), client.get(f"/api/v1/jobs/{job.pk}/"),
                 client.get(f"/api/v1/sessions/{other.pk}/jobs/"), client.get(f"/api/v1/images/{image.pk}/result-sets/"),
                 client.get(f"/api/v1/result-sets/{rs.pk}/")]
    assert [r.status_code for r in responses] == [200] * 5  # the session is not blinded: its jobs are seen
    assert str(job.pk) in responses[0].content.decode()
    for response in responses:
        body = response.content.decode()
        assert not [v for v in secrets if v in body], f"{response.request['PATH_INFO']} names the model"
        assert "model_version" not in set(_keys(response.json()))
    assert client.get("/api/v1/models/").status_code == 404
    assert client.get(reverse("jobs:detail", kwargs={"job_id": job.pk})).status_code == 200
    assert mv.name not in client.get(reverse("jobs:detail", kwargs={"job_id": job.pk})).content.decode()
    # also when they review too: the other session's review page and the registry name no model
    from portal.centers.services import membership_grant

    membership_grant(user=getattr(cast.a, role), center=cast.a.center, role="reviewer")
    page = client.get(reverse("review:session-detail", kwargs={"pk": other.pk}))
    assert page.status_code == 200 and mv.name not in page.content.decode()
    assert client.get("/api/v1/models/").status_code == 404
    # a reviewer, blinded from nothing, still sees which model ran
    client.force_login(cast.a.reviewer)
    assert mv.name in client.get("/api/v1/jobs/").content.decode()


@pytest.mark.django_db
def test_a_stain_technician_who_also_reviews_sees_no_review_page_or_overlay_of_a_blinded_session(cast, client):
    from portal.centers.services import membership_grant

    study = vt.make_open_study(cast, cast.a)
    image = study.sessions.first().images.first()
    membership_grant(user=cast.a.stain, center=cast.a.center, role="reviewer")
    client.force_login(cast.a.stain)
    for name, kwargs in (("review:viewer", {"image_id": image.pk}), ("review:image-thumb", {"image_id": image.pk}),
                         ("review:image-display", {"image_id": image.pk}), ("api-review-image", {"image_id": image.pk}),
                         ("review:session-detail", {"pk": image.session_id})):
        assert client.get(reverse(name, kwargs=kwargs)).status_code == 404, name
    assert str(image.session_id) not in client.get(reverse("review:session-list")).content.decode()
    client.force_login(cast.a.reviewer)
    assert client.get(reverse("api-review-image", kwargs={"image_id": image.pk})).status_code == 200


@pytest.mark.django_db
def test_blinding_holds_when_the_validation_apps_selectors_raise(cast, client, monkeypatch):
    """Blinding is data (``imaging.SessionBlinding``) that every reader filters on: with every function of
    ``portal.validation.selectors`` broken, blinded users still get "not found", never the output."""
    import portal.validation.selectors as validation_selectors

    study = vt.make_open_study(cast, cast.a)
    session = study.sessions.first()
    image = session.images.first()
    rs = image.result_sets.first()

    def broken(*args, **kwargs):
        raise RuntimeError("validation selectors unavailable")

    for name in dir(validation_selectors):
        if not name.startswith("_") and callable(getattr(validation_selectors, name)) \
                and getattr(getattr(validation_selectors, name), "__module__", "") == validation_selectors.__name__:
            monkeypatch.setattr(validation_selectors, name, broken)
    for role in BLINDED_ROLES:
        client.force_login(getattr(cast.a, role))
        assert client.get(f"/api/v1/result-sets/{rs.pk}/").status_code == 404
        assert client.get(f"/api/v1/images/{image.pk}/result-sets/").status_code == 404
        assert client.get(f"/api/v1/sessions/{session.pk}/jobs/").status_code == 404
        assert str(rs.pk) not in client.get("/api/v1/jobs/").content.decode()
    client.force_login(cast.a.reviewer)
    assert client.get(f"/api/v1/result-sets/{rs.pk}/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("role", BLINDED_ROLES)
def test_a_blinded_user_who_also_administers_sees_no_dataset_training_job_or_model_card(cast, client, role):
    """Datasets hold reviewed model output and training pages show models and their scores: a validator or
    stain technician of an open study who is also a center admin gets none of them while blinded."""
    from portal.centers.services import membership_grant
    from portal.datasets.models import DatasetLine, DatasetVersion
    from portal.jobs.models import JobStatus
    from portal.training.models import TrainingJob

    study = vt.make_open_study(cast, cast.a)
    mv = study.model_version
    line = DatasetLine.objects.create(center=cast.a.center, name="blind", created_by=cast.a.admin)
    version = DatasetVersion.objects.create(line=line, center=cast.a.center, number=1, storage_prefix="x", manifest={},
                                            manifest_sha256="0" * 64, created_by=cast.a.admin)
    job = TrainingJob.objects.create(center=cast.a.center, dataset_version=version, status=JobStatus.SUCCEEDED,
                                     candidate=mv)
    user = getattr(cast.a, role)
    membership_grant(user=user, center=cast.a.center, role="center_admin")
    client.force_login(user)
    for path in (f"/api/v1/datasets/{version.pk}/", f"/api/v1/datasets/{version.pk}/coco.zip",
                 f"/api/v1/training/jobs/{job.pk}/", f"/api/v1/training/jobs/{job.pk}/progress/",
                 f"/api/v1/models/{mv.pk}/card/", reverse("training:model-card", kwargs={"model_version_id": mv.pk}),
                 reverse("training:job-detail", kwargs={"training_job_id": job.pk}),
                 reverse("datasets:detail", kwargs={"dataset_version_id": version.pk}), reverse("training:index")):
        response = client.get(path)
        assert response.status_code == 404, path
    for path in ("/api/v1/datasets/", "/api/v1/training/jobs/"):
        body = client.get(path).content.decode()
        assert str(version.pk) not in body and str(job.pk) not in body and mv.name not in body
    client.force_login(cast.a.admin)
    assert client.get(f"/api/v1/training/jobs/{job.pk}/").status_code == 200
