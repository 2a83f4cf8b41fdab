"""Real broker + real worker processes: upload → job → detections through the API; a corrupt model
fails after the retry limit while other jobs go on; Redis restarted mid-run loses no job."""
from __future__ import annotations

import time

import pytest

from portal.jobs.models import InferenceJob, JobStatus
from portal.testing.jobs import make_image, make_session, png_bytes, synth_rgb
from tests.helpers import wait_for
from tests.workers.conftest import expected_counts

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _all_finished(ids) -> bool:
    return not InferenceJob.objects.filter(pk__in=ids, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).exists()


def test_session_upload_leads_to_detections_visible_through_the_api(cast, tiny_model, workers, client, settings):
    settings.INFERENCE_AUTO_ON_UPLOAD = True
    workers.start(1)
    session = make_session(cast.a)
    client.force_login(cast.a.uploader)
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = [SimpleUploadedFile(f"field{seed}.png", png_bytes(synth_rgb(seed)[0]), content_type="image/png")
             for seed in (1, 3)]
    response = client.post(f"/api/v1/sessions/{session.pk}/images/", {"files": files})
    assert response.status_code == 201, response.content
    job = wait_for(lambda: InferenceJob.objects.filter(session=session).first(), 10, what="automatic job")
    assert job.triggered_by == "upload"
    wait_for(lambda: _all_finished([job.pk]), 120, what="job to finish")
    detail = client.get(f"/api/v1/jobs/{job.pk}/").json()
    assert detail["status"] == "succeeded", detail
    assert detail["images_done"] == detail["images_total"] == 2
    client.force_login(cast.a.reviewer)
    counted = 0
    for row in detail["images"]:
        sets = client.get(f"/api/v1/images/{row['image_id']}/result-sets/").json()
        assert [s["id"] for s in sets] == [row["result_set_id"]]
        body = client.get(f"/api/v1/result-sets/{row['result_set_id']}/").json()
        assert body["status"] == "complete" and body["detection_count"] == len(body["detections"])
        counted += len(body["detections"])
        for det in body["detections"]:
            assert det["mask_rle"]["size"] == [128, 128] and det["area_um2"] is not None
    assert counted == sum(expected_counts(tiny_model, (1, 3)).values()) > 0
    # another center sees nothing
    client.force_login(cast.b.reviewer)
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 404


def test_a_corrupt_model_fails_after_the_retry_limit_while_others_go_on(cast, tiny_model, workers, tmp_path):
    from portal.jobs.services import job_create
    from portal.mlmodels.services import model_register_bundle
    from portal.testing.jobs import stored_bundle_file_rewrite, tiny_bundle

    broken = model_register_bundle(path=tiny_bundle(tmp_path / "broken", name="broken", version="1", jitter=1e-4),
                                   activate=False)

    def corrupt(data: bytes) -> bytes:
        middle = len(data) // 2
        return data[:middle] + b"\xff" * 64 + data[middle + 64:]

    stored_bundle_file_rewrite(broken, "model_final.safetensors", corrupt)
    good, bad = [], None
    for i in range(6):
        session = make_session(cast.a)
        make_image(session, seed=i)
        if i == 2:
            bad = job_create(session=session, user=cast.a.uploader, model_version=broken)
        else:
            good.append(job_create(session=session, user=cast.a.uploader))
    workers.start(2)
    wait_for(lambda: _all_finished([j.pk for j in good] + [bad.pk]), 150, what="jobs to finish")
    bad.refresh_from_db()
    assert bad.status == JobStatus.FAILED and bad.attempts == 3
    assert "Failed after 3 attempts" in bad.error_message and "corrupt" in bad.error_message
    assert all(j.status == JobStatus.SUCCEEDED for j in InferenceJob.objects.filter(pk__in=[g.pk for g in good]))


def test_all_jobs_finish_when_redis_restarts_mid_run(cast, tiny_model, workers, broker):
    from portal.jobs.services import job_create

    jobs = []
    for i in range(16):
        session = make_session(cast.a)
        make_image(session, seed=i % 8)
        jobs.append(job_create(session=session, user=cast.a.uploader))
    workers.start(2)
    ids = [j.pk for j in jobs]
    wait_for(lambda: InferenceJob.objects.filter(pk__in=ids, status=JobStatus.SUCCEEDED).count() >= 3, 90,
             what="first jobs done")
    done_before = InferenceJob.objects.filter(pk__in=ids, status=JobStatus.SUCCEEDED).count()
    broker.restart(down_seconds=2.0)  # every queued message is gone (no persistence)
    restarted_at = time.monotonic()
    wait_for(lambda: _all_finished(ids), 180, what="all jobs after the Redis restart")
    statuses = list(InferenceJob.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert statuses.count("succeeded") == len(ids), statuses
    print(f"redis restart: {done_before}/{len(ids)} done before, all done "
          f"{time.monotonic() - restarted_at:.1f}s after the restart")


@pytest.mark.parametrize("suffix", [".pth", ".pkl"])
def test_a_worker_refuses_weights_that_run_code_and_goes_on(cast, tiny_model, tiny_bundle_dir, workers, tmp_path,
                                                            suffix):
    """A model row whose stored weights carry a pickle payload (stored before uploads were checked): the
    worker refuses the file when it loads it, fails that job at once, and runs the next job."""
    from portal.jobs.services import job_create
    from portal.mlmodels.bundles import file_sha256
    from portal.mlmodels.models import ModelVersion
    from tests.malicious_weights import make_malicious_bundle

    marker = tmp_path / "marker"
    bundle = make_malicious_bundle(tiny_bundle_dir, tmp_path / "evil", suffix=suffix, marker=marker)
    evil = ModelVersion.objects.create(name="evil", version="1", class_names=tiny_model.class_names,
                                       weights_sha256=file_sha256(bundle / f"model_final{suffix}"),
                                       bundle_path=str(bundle))
    session = make_session(cast.a)
    make_image(session, seed=1)
    bad = job_create(session=session, user=cast.a.uploader, model_version=evil)
    other = make_session(cast.a)
    make_image(other, seed=2)
    good = job_create(session=other, user=cast.a.uploader)
    workers.start(1)
    wait_for(lambda: _all_finished([bad.pk, good.pk]), 120, what="both jobs to finish")
    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.status == JobStatus.FAILED and bad.attempts == 1, bad.error_message
    assert f"weights file model_final{suffix} holds objects other than tensors" in bad.error_message
    assert good.status == JobStatus.SUCCEEDED
    assert not marker.exists()
