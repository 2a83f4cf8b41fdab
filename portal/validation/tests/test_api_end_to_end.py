"""End to end through the API: create, pick, open, two validators score and sign, lock, unblind, report."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from portal.audit.models import AuditEvent
from portal.testing import validation as vt
from portal.testing.cast import PASSWORD
from portal.validation.models import Cell


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_a_study_runs_from_creation_to_report_through_the_api(cast):
    a = cast.a
    session = vt.make_session(a)
    image = vt.make_image(session)
    mv = vt.make_model_version()
    vt.make_result_set(image, mv)
    admin = _client(a.admin)
    r = admin.post("/api/v1/validation/studies/", {
        "name": "E2E", "center": str(a.center.pk), "sessions": [str(session.pk)], "model_version": str(mv.pk),
        "design": "picked_cells", "score_threshold": 0.5, "ground_truth_rule": "either",
    }, format="json")
    assert r.status_code == 201, r.content
    study_id = r.json()["id"]
    for name in ("a_validator", "a_validator2"):
        assert admin.post(f"/api/v1/validation/studies/{study_id}/validators/", {"username": name},
                          format="json").status_code == 200
    picker = _client(a.uploader)
    field = picker.get(f"/api/v1/validation/studies/{study_id}/fields/").json()[0]["field"]
    for x, y in vt.PLANTED_PICKS:
        assert picker.post(f"/api/v1/validation/studies/{study_id}/picks/", {"field": field, "x_px": x, "y_px": y},
                           format="json").status_code == 201
    r = admin.post(f"/api/v1/validation/studies/{study_id}/open/")
    assert r.status_code == 200 and len(r.json()["model_output_sha256"]) == 64

    orders = []
    for user in (a.validator, a.validator2):
        client = _client(user)
        cells = client.get(f"/api/v1/validation/my/studies/{study_id}/cells/").json()["cells"]
        orders.append([c["cell"] for c in cells])
        for c in cells:
            cell = Cell.objects.get(study_id=study_id, public_id=c["cell"])
            stain = "pos" if vt.planted_truth(cell) else "neg"
            r = client.put(f"/api/v1/validation/my/studies/{study_id}/cells/{c['cell']}/",
                           {"morphology": "yes", "prm1": stain, "pna": stain}, format="json")
            assert r.status_code == 200
        progress = client.get(f"/api/v1/validation/my/studies/{study_id}/cells/").json()["study"]
        assert progress["done"] == progress["total"] == 14
        assert client.post(f"/api/v1/validation/my/studies/{study_id}/sign/", {"password": "nope"},
                           format="json").status_code == 400
        assert client.post(f"/api/v1/validation/my/studies/{study_id}/sign/", {"password": PASSWORD},
                           format="json").status_code == 201
    assert orders[0] != orders[1] and sorted(orders[0]) == sorted(orders[1])

    assert admin.post(f"/api/v1/validation/studies/{study_id}/lock/", {"password": PASSWORD},
                      format="json").status_code == 200
    # after lock: refused (4xx) and audited
    refused_before = AuditEvent.objects.filter(action="validation.score.refused").count()
    r = _client(a.validator).put(f"/api/v1/validation/my/studies/{study_id}/cells/{orders[0][0]}/",
                                 {"morphology": "no"}, format="json")
    assert r.status_code == 409 and r.json()["message"]
    r = _client(a.stain).put(f"/api/v1/validation/stain/studies/{study_id}/cells/{orders[0][0]}/",
                             {"prm1": "neg"}, format="json")
    assert r.status_code == 409
    assert AuditEvent.objects.filter(action="validation.score.refused").count() == refused_before + 1
    assert AuditEvent.objects.filter(action="validation.stain.refused").exists()

    r = admin.post(f"/api/v1/validation/studies/{study_id}/unblind/", {"password": PASSWORD}, format="json")
    assert r.status_code == 200
    results = admin.get(f"/api/v1/validation/studies/{study_id}/results/").json()["results"]
    ppv = results["model"]["metrics"]["ppv"]
    assert (ppv["k"], ppv["n"]) == (8, 10)
    assert results["embryologist"]["metrics"]["ppv"]["estimate"] == pytest.approx(0.5)
    assert results["model_output_verified"] and results["scores_verified"]

    client = admin
    from django.test import Client

    html = Client()
    html.force_login(a.admin)
    page = html.get(f"/validation/studies/{study_id}/report/").content.decode()
    assert vt.PLANTED_MODEL_PPV_TEXT in page and "I confirm these scores" in page
    csv_body = html.get(f"/validation/studies/{study_id}/report.csv").content.decode()
    assert "model_output_sha256" in csv_body and "0.8000" in csv_body
    assert client.get(f"/api/v1/validation/studies/{study_id}/").json()["status"] == "unblinded"
    actions = set(AuditEvent.objects.filter(object_id=study_id).values_list("action", flat=True))
    assert {"validation.study.create", "validation.study.open", "validation.sign", "validation.study.lock",
            "validation.study.unblind", "validation.report.read", "validation.report.export"} <= actions
