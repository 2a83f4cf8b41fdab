"""The report's per-class results, threshold sweep (table + SVG) and tidy CSV zip, after unblinding only."""
from __future__ import annotations

import csv
import io
import zipfile

import pytest
from django.test import Client
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.testing import validation as vt
from portal.testing.cast import login_verified
from portal.validation import statistics as st


def _cell(i, *, cls, score, prm1):
    return {"id": f"c{i}", "center": "CA", "from_model": cls is not None, "from_embryologist": cls is None,
            "from_validator": False, "model_positive": False, "model_class": cls or "", "model_score": score,
            "prm1": prm1, "pna": "na", "ratings": {}}


CELLS = [
    _cell(1, cls="round_spermatid", score=0.95, prm1="pos"),
    _cell(2, cls="round_spermatid", score=0.80, prm1="pos"),
    _cell(3, cls="round_spermatid", score=0.60, prm1="neg"),
    _cell(4, cls="round_spermatid", score=0.30, prm1="pos"),
    _cell(5, cls="spermatocyte", score=0.90, prm1="neg"),
    _cell(6, cls=None, score=None, prm1="pos"),  # an embryologist's pick the model missed
    _cell(7, cls="round_spermatid", score=0.70, prm1="na"),  # excluded: no ground truth
]


def test_the_sweep_counts_calls_at_or_above_each_threshold_by_hand():
    rows = {r["threshold"]: r for r in st.threshold_sweep(CELLS, rule="prm1", target_class="round_spermatid",
                                                          thresholds=[0.25, 0.6, 0.85, 0.99])}
    # four stain-positive cells with a ground truth: 1, 2, 4, 6
    assert (rows[0.25]["called"], rows[0.25]["tp"], rows[0.25]["fn"]) == (4, 3, 1)
    assert rows[0.25]["ppv"]["estimate"] == pytest.approx(3 / 4)
    assert rows[0.25]["sensitivity"]["estimate"] == pytest.approx(3 / 4)
    assert (rows[0.6]["called"], rows[0.6]["tp"]) == (3, 2)  # 0.60 is "at or above"
    assert (rows[0.85]["called"], rows[0.85]["tp"], rows[0.85]["fp"]) == (1, 1, 0)
    assert rows[0.99]["ppv"]["estimate"] is None and rows[0.99]["sensitivity"]["estimate"] == 0.0


def test_sensitivity_never_rises_as_the_threshold_rises():
    sweep = st.threshold_sweep(CELLS, rule="prm1", target_class="round_spermatid")
    values = [r["sensitivity"]["estimate"] for r in sweep]
    assert values == sorted(values, reverse=True) and len(sweep) == 19


def test_per_class_rows_count_ground_truth_per_model_class():
    rows = {r["class_name"]: r for r in st.per_class_results(CELLS, rule="prm1")}
    rs = rows["round_spermatid"]
    assert (rs["cells"], rs["positive"], rs["negative"], rs["excluded"]) == (5, 3, 1, 1)
    assert rs["positive_fraction"]["estimate"] == pytest.approx(0.75)
    assert rows["spermatocyte"]["positive"] == 0
    assert rows[st.NOT_FROM_MODEL]["positive"] == 1
    assert list(rows)[-1] == st.NOT_FROM_MODEL


@pytest.fixture
def unblinded(cast):
    return vt.make_unblinded_study(cast, cast.a)


def _admin_client(cast) -> Client:
    client = Client()
    login_verified(client, cast.a.admin)
    return client


@pytest.mark.django_db
def test_the_report_shows_per_class_results_the_sweep_and_the_full_hashes(cast, unblinded):
    html = _admin_client(cast).get(reverse("validation:report", kwargs={"study_id": unblinded.pk})).content.decode()
    assert 'id="per-class-table"' in html and 'data-class="round_spermatid"' in html
    assert 'id="sweep-table"' in html and html.count('<tr data-threshold="') == 19
    assert 'id="sweep-plot"' in html and 'id="sweep-ppv" points="' in html
    assert unblinded.model_output_sha256 in html and unblinded.scores_sha256 in html
    for s in unblinded.signatures.all():
        assert s.scores_sha256 in html  # the full hash, not a prefix
    assert unblinded.results["threshold_sweep"]  # stored at unblinding


@pytest.mark.django_db
def test_a_study_unblinded_before_the_sweep_existed_gets_it_computed(cast, unblinded):
    results = dict(unblinded.results)
    results.pop("threshold_sweep")
    results.pop("per_class")
    unblinded.results = results
    unblinded.save(update_fields=["results"])
    html = _admin_client(cast).get(reverse("validation:report", kwargs={"study_id": unblinded.pk})).content.decode()
    assert html.count('<tr data-threshold="') == 19 and 'data-class="round_spermatid"' in html


@pytest.mark.django_db
def test_the_tidy_zip_has_one_table_per_file_in_utc_and_is_audited(cast, unblinded):
    response = _admin_client(cast).get(reverse("validation:report-zip", kwargs={"study_id": unblinded.pk}))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        names = set(zf.namelist())
        assert {"README.txt", "study.csv", "cells.csv", "scores.csv", "stain_results.csv", "threshold_sweep.csv",
                "per_class.csv", "signatures.csv", "metrics.csv"} <= names
        tables = {n: list(csv.DictReader(io.StringIO(zf.read(n).decode("utf-8")))) for n in names if n.endswith(".csv")}
        readme = zf.read("README.txt").decode()
    assert "UTC" in readme
    meta = {r["key"]: r["value"] for r in tables["study.csv"]}
    assert meta["timezone"] == "UTC" and meta["unblinded_at"].endswith("Z")
    assert meta["model_output_sha256"] == unblinded.model_output_sha256 and meta["scores_sha256"] == unblinded.scores_sha256
    assert len(tables["cells.csv"]) == unblinded.cells.count()
    assert len(tables["scores.csv"]) == sum(v.assignments.count() for v in unblinded.validators.all())
    assert all(r["scored_at_utc"].endswith("Z") for r in tables["scores.csv"] if r["scored_at_utc"])
    assert [r["threshold"] for r in tables["threshold_sweep.csv"]][:3] == ["0.05", "0.1", "0.15"]
    for name, rows in tables.items():  # locale-independent numbers: never a decimal comma
        for row in rows:
            for key, value in row.items():
                if key.endswith(("threshold", "ppv", "sensitivity", "score", "estimate", "low", "high", "fraction")):
                    assert "," not in (value or ""), (name, key, value)
    event = AuditEvent.objects.filter(action="validation.report.export", object_id=str(unblinded.pk)).latest("id")
    assert event.after["format"] == "zip" and "cells.csv" in event.after["files"]


@pytest.mark.django_db
def test_the_zip_of_a_study_not_unblinded_is_not_found(cast):
    study = vt.make_signed_study(cast, cast.a)
    response = _admin_client(cast).get(reverse("validation:report-zip", kwargs={"study_id": study.pk}))
    assert response.status_code == 404
