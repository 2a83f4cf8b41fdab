"""The HTML pages: training use and dataset forms, the training start form, progress JSON, the result-set
comparison."""
import io
import zipfile

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.datasets.models import DatasetVersion, SessionTrainingUse
from portal.jobs.models import JobStatus
from portal.results.models import Detection, ResultSet, ResultSetStatus
from portal.testing.training import make_session_for, make_synthetic_image, review_image
from portal.training.models import TrainingJob

pytestmark = pytest.mark.django_db


def test_an_admin_releases_a_session_makes_a_dataset_and_starts_training_from_the_pages(cast, storage, client,
                                                                                       training_settings):
    session = make_session_for(cast.a)
    image, dets, fp = make_synthetic_image(session, seed=11)
    review_image(cast.a, image, dets, fp)
    client.force_login(cast.a.admin)
    page = client.get(reverse("datasets:index"))
    assert page.status_code == 200 and session.patient.code in page.content.decode()
    r = client.post(reverse("datasets:session-use", kwargs={"session_id": session.pk}),
                    {"consent": "on", "sorted_population": "", "sorted_class": "", "purity_percent": ""})
    assert r.status_code == 302 and SessionTrainingUse.objects.get(session=session).consent
    r = client.post(reverse("datasets:create"), {"center_id": str(cast.a.center.pk), "name": "pages",
                                                 "session_ids": [str(session.pk)]})
    version = DatasetVersion.objects.get(line__name="pages")
    assert r.status_code == 302 and r["Location"] == reverse("datasets:detail", kwargs={"dataset_version_id": version.pk})
    detail = client.get(r["Location"]).content.decode()
    assert version.manifest_sha256 in detail
    export = client.get(reverse("datasets:export", kwargs={"dataset_version_id": version.pk}))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(export.streaming_content)))
    assert {"annotations.json", "manifest.json"} <= set(archive.namelist())
    r = client.post(reverse("training:start"), {"dataset_version_id": str(version.pk), "iterations": "7",
                                                "base_lr": "", "image_scale": "", "checkpoint_period": ""})
    job = TrainingJob.objects.get()
    assert r.status_code == 302 and job.status == JobStatus.QUEUED and job.options["iterations"] == 7
    progress = client.get(reverse("api-training-job-progress", kwargs={"training_job_id": job.pk})).json()
    assert progress["active"] and progress["max_iter"] == 7 and progress["iteration"] == 0
    r = client.post(reverse("training:start"), {"dataset_version_id": str(version.pk), "iterations": "zero"})
    assert r.status_code == 302 and TrainingJob.objects.count() == 1


def test_a_bad_purity_is_refused_with_a_message_and_nothing_changes(cast, storage, client):
    session = make_session_for(cast.a)
    client.force_login(cast.a.admin)
    r = client.post(reverse("datasets:session-use", kwargs={"session_id": session.pk}),
                    {"consent": "on", "sorted_population": "1C", "sorted_class": "round_spermatid",
                     "purity_percent": "lots"}, follow=True)
    assert "Purity must be a number" in r.content.decode()
    assert not SessionTrainingUse.objects.filter(session=session).exists()


def test_the_compare_page_shows_two_result_sets_of_an_image_side_by_side(cast, storage, client):
    session = make_session_for(cast.a)
    image, dets, _ = make_synthetic_image(session, seed=12)
    old = dets[0].result_set
    new = ResultSet.objects.create(center=image.center, image=image, status=ResultSetStatus.COMPLETE,
                                   completed_at=timezone.now())
    Detection.objects.create(**{**{f.name: getattr(dets[0], f.name) for f in Detection._meta.fields
                                   if f.name not in ("id", "result_set", "created_at")}, "result_set": new})
    client.force_login(cast.a.reviewer)
    page = client.get(reverse("training:compare", kwargs={"image_id": image.pk}))
    body = page.content.decode()
    assert page.status_code == 200
    assert body.count('class="compare-overlay"') == 2 and body.count("<polygon") == len(dets) + 1 + 1
    assert f'value="{old.pk}" selected' in body and f'value="{new.pk}" selected' in body
    assert client.get(reverse("training:compare", kwargs={"image_id": image.pk}),
                      {"a": str(new.pk), "b": "00000000-0000-0000-0000-000000000000"}).status_code == 404


def test_the_compare_page_is_refused_to_a_reviewer_blinded_from_another_session(cast, storage, client):
    """Model names and scores are never shown to someone who validates a study elsewhere, even for a
    session they review openly."""
    from portal.imaging.models import SessionBlinding

    session = make_session_for(cast.a)
    image, _, _ = make_synthetic_image(session, seed=13)
    client.force_login(cast.a.reviewer)
    url = reverse("training:compare", kwargs={"image_id": image.pk})
    assert client.get(url).status_code == 200
    SessionBlinding.objects.create(user=cast.a.reviewer, session=make_session_for(cast.a),
                                   source="validation.study:test")
    page = client.get(url)
    assert page.status_code == 404
    assert "compare-overlay" not in page.content.decode()


def test_the_pending_gate_reason_is_translated(cast, tiny_model, reviewed_dataset):
    from django.utils import translation

    from portal.training.evaluation import gate_compare

    def reason(language: str) -> str:
        with translation.override(language):
            gate = gate_compare(candidate=tiny_model, current=None, dataset_version=reviewed_dataset,
                                center=cast.a.center, compute=False)
        assert gate["pending"] and not gate["passed"]
        [text] = gate["reasons"]
        return text

    english = reason("en")
    assert english.startswith("Not evaluated on this center's held-out images yet")
    chinese = reason("zh-hans")
    assert chinese != english and any("\u4e00" <= ch <= "\u9fff" for ch in chinese)
