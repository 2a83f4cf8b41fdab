"""Job services in-process: create/enqueue after commit, claim, run with the tiny model, retry, cancel,
sweep, automatic jobs on upload."""
from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
import torch
from django.utils import timezone

from portal.core.errors import Conflict, DomainError
from portal.imaging.models import ImageStatus
from portal.jobs import services
from portal.jobs.models import InferenceJob, JobImage, JobImageStatus, JobStatus
from portal.results.models import Detection, ResultSet, ResultSetStatus
from portal.testing.jobs import make_image, make_session, synth_rgb

DEAD = "deadhost.invalid:1"


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def sent():
    """Messages the services send to the broker (job ids), instead of a broker."""
    with mock.patch.object(services, "_send") as send:
        yield send


def _session_with_images(cast, n=2):
    session = make_session(cast.a)
    images = [make_image(session, seed=i) for i in range(n)]
    return session, images


def test_job_create_sends_only_the_job_id_after_commit(cast, tiny_model, sent, django_capture_on_commit_callbacks):
    session, images = _session_with_images(cast)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = services.job_create(session=session, user=cast.a.uploader)
        sent.assert_not_called()  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    sent.assert_called_once_with(str(job.pk), None, queue="cpu")
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.images_total == 2 and job.enqueue_count == 1
    assert job.model_version == tiny_model
    assert {ji.image_id for ji in job.job_images.all()} == {i.pk for i in images}


def test_job_create_refuses_validators_other_centers_models_and_duplicates(cast, tiny_model, sent):
    session, _ = _session_with_images(cast, 1)
    with pytest.raises(DomainError):
        services.job_create(session=session, user=cast.a.validator)
    services.job_create(session=session, user=cast.a.uploader)
    with pytest.raises(Conflict):
        services.job_create(session=session, user=cast.a.reviewer)
    with pytest.raises(DomainError, match="Unknown"):
        services.job_create(session=make_session(cast.a), user=cast.a.uploader, parameters={"nope": 1})


def test_job_run_stores_detections_like_the_engine_in_process(cast, tiny_model, sent):
    session, images = _session_with_images(cast, 2)
    job = services.job_create(session=session, user=cast.a.uploader)
    assert services.job_run(job_id=job.pk, worker_id="test:1") == "succeeded"
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.images_done == 2 and job.attempts == 1
    from inference.bundle import load_bundle
    from portal.jobs.inference import model_bundle_local_dir

    predictor = load_bundle(model_bundle_local_dir(tiny_model)).predictor(device="cpu")
    for seed, image in enumerate(images):
        expected = predictor.predict(synth_rgb(seed)[0], um_per_px=0.25)
        result_set = ResultSet.objects.get(job=job, image=image)
        assert result_set.status == ResultSetStatus.COMPLETE
        rows = list(result_set.detections.order_by("index"))
        assert len(rows) == len(expected) > 0
        top = rows[0]
        assert top.score == pytest.approx(float(expected.scores.max()), abs=1e-5)
        assert top.area_um2 == pytest.approx(top.area_px * 0.0625)
        assert top.diameter_um > 0 and top.centroid_x_um == pytest.approx(top.centroid_x_px * 0.25)
        assert top.mask_rle["size"] == [128, 128] and top.class_name in tiny_model.class_names
        image.refresh_from_db()
        assert image.status == ImageStatus.ANALYZED
    # a duplicate message does nothing
    assert services.job_run(job_id=job.pk, worker_id="test:2") == "skipped"
    assert ResultSet.objects.filter(job=job).count() == 2


def test_reanalysis_makes_a_new_result_set_and_keeps_the_old(cast, tiny_model, sent):
    session, images = _session_with_images(cast, 1)
    first = services.job_create(session=session, user=cast.a.uploader)
    services.job_run(job_id=first.pk, worker_id="test:1")
    second = services.job_create(session=session, user=cast.a.uploader, parameters={"score_threshold": 0.9})
    services.job_run(job_id=second.pk, worker_id="test:1")
    sets = ResultSet.objects.filter(image=images[0]).order_by("created_at")
    assert [s.job_id for s in sets] == [first.pk, second.pk]
    assert sets[1].parameters == {"score_threshold": 0.9}
    assert all(d.score >= 0.9 for d in sets[1].detections.all())
    assert sets[0].detections.count() >= sets[1].detections.count()


def test_a_retry_replaces_only_its_own_partial_rows(cast, tiny_model, sent):
    session, images = _session_with_images(cast, 1)
    old_job = services.job_create(session=session, user=cast.a.uploader)
    services.job_run(job_id=old_job.pk, worker_id="test:1")
    old_rows = set(Detection.objects.filter(result_set__job=old_job).values_list("id", flat=True))
    job = services.job_create(session=session, user=cast.a.uploader)
    # an attempt that died half-way: claimed, a PARTIAL set with junk rows, heartbeat long gone
    InferenceJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, worker_id=DEAD, attempts=1,
                                                  heartbeat_at=timezone.now() - timedelta(hours=1))
    partial = ResultSet.objects.create(center=cast.a.center, image=images[0], job=job,
                                       model_version=tiny_model, status=ResultSetStatus.PARTIAL)
    Detection.objects.create(result_set=partial, index=0, class_name="junk", x1=0, y1=0, x2=1, y2=1,
                             mask_rle={}, area_px=1, centroid_x_px=0, centroid_y_px=0)
    JobImage.objects.filter(job=job).update(status=JobImageStatus.RUNNING, claimed_by=DEAD,
                                            heartbeat_at=timezone.now() - timedelta(hours=1))
    assert services.job_run(job_id=job.pk, worker_id="test:2") == "succeeded"
    partial.refresh_from_db()
    assert partial.status == ResultSetStatus.COMPLETE
    assert not partial.detections.filter(class_name="junk").exists()
    assert set(Detection.objects.filter(result_set__job=old_job).values_list("id", flat=True)) == old_rows
    job.refresh_from_db()
    assert job.attempts == 2


def test_claims_are_conditional(cast, tiny_model, sent):
    session, _ = _session_with_images(cast, 1)
    job = services.job_create(session=session, user=cast.a.uploader)
    assert services.job_claim(job_id=job.pk, worker_id="w:1") is not None
    assert services.job_claim(job_id=job.pk, worker_id="w:2") is None  # alive (fresh heartbeat)
    job_image = job.job_images.get()
    assert services.job_claim_image(job_image=job_image, worker_id="w:2") is False  # not w:2's job
    assert services.job_claim_image(job_image=job_image, worker_id="w:1") is True


def test_a_dead_local_worker_is_taken_over_at_once(cast, tiny_model, sent):
    import socket
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    dead = f"{socket.gethostname()}:{proc.pid}"
    session, _ = _session_with_images(cast, 1)
    job = services.job_create(session=session, user=cast.a.uploader)
    InferenceJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, worker_id=dead,
                                                  heartbeat_at=timezone.now(), attempts=1)
    assert services.worker_is_dead(dead)
    assert services.job_run(job_id=job.pk, worker_id="w:new") == "succeeded"


def test_cancel_stops_between_images(cast, tiny_model, sent):
    session, _ = _session_with_images(cast, 3)
    job = services.job_create(session=session, user=cast.a.uploader)
    from portal.jobs import inference

    real_predictor_for = inference.predictor_for

    def predictor_for(**kw):
        predictor = real_predictor_for(**kw)

        class Cancelling:
            def predict(self, *a, **k):
                services.job_cancel(job=job, user=cast.a.reviewer)
                return predictor.predict(*a, **k)

        return Cancelling()

    with mock.patch.object(inference, "predictor_for", predictor_for):
        assert services.job_run(job_id=job.pk, worker_id="w:1") == "cancelled"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.images_done == 1
    assert ResultSet.objects.filter(job=job, status=ResultSetStatus.COMPLETE).count() == 1


def test_cancel_of_a_queued_job_is_immediate_and_finished_jobs_refuse(cast, tiny_model, sent):
    session, _ = _session_with_images(cast, 1)
    job = services.job_create(session=session, user=cast.a.uploader)
    services.job_cancel(job=job, user=cast.a.uploader)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert services.job_run(job_id=job.pk, worker_id="w:1") == "skipped"
    with pytest.raises(Conflict):
        services.job_cancel(job=job, user=cast.a.uploader)


def test_a_corrupt_model_fails_the_job_after_the_retry_limit(cast, tiny_model, sent, settings,
                                                             django_capture_on_commit_callbacks):
    settings.JOB_MAX_ATTEMPTS = 3
    settings.JOB_RETRY_BACKOFF_SECONDS = 0
    session, _ = _session_with_images(cast, 1)
    job = services.job_create(session=session, user=cast.a.uploader)
    from portal.testing.jobs import stored_bundle_file_rewrite

    stored_bundle_file_rewrite(tiny_model, "model_final.safetensors", lambda data: data[:5000])
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = [services.job_run(job_id=job.pk, worker_id="w:1") for _ in range(4)]
    assert outcomes == ["retrying", "retrying", "failed", "skipped"]
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.attempts == 3
    assert "Failed after 3 attempts" in job.error_message and "corrupt" in job.error_message
    assert job.job_images.get().status == JobImageStatus.FAILED
    assert [c.args[1] for c in sent.call_args_list] == [0, 0]  # two retries, each with its backoff


def test_the_sweeper_requeues_silent_jobs_and_resends_lost_messages(cast, tiny_model, sent, settings):
    settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 10
    session, _ = _session_with_images(cast, 1)
    running = services.job_create(session=session, user=cast.a.uploader)
    InferenceJob.objects.filter(pk=running.pk).update(status=JobStatus.RUNNING, worker_id=DEAD, attempts=1,
                                                      heartbeat_at=timezone.now() - timedelta(seconds=30))
    other_session, _ = _session_with_images(cast, 1)
    lost = services.job_create(session=other_session, user=cast.a.uploader)
    InferenceJob.objects.filter(pk=lost.pk).update(last_enqueued_at=timezone.now() - timedelta(seconds=30))
    fresh_session, _ = _session_with_images(cast, 1)
    services.job_create(session=fresh_session, user=cast.a.uploader)
    assert services.jobs_sweep_stale() == {"requeued": 1, "resent": 1, "cancelled": 0}
    running.refresh_from_db()
    assert running.status == JobStatus.QUEUED and running.worker_id == ""
    # re-sent with growing spacing: not again right away
    assert services.jobs_sweep_stale() == {"requeued": 0, "resent": 0, "cancelled": 0}


def test_upload_hook_creates_a_job_with_the_active_model_when_enabled(cast, tiny_model, sent, settings):
    session, images = _session_with_images(cast, 2)
    settings.INFERENCE_AUTO_ON_UPLOAD = False
    assert services.jobs_on_images_stored(session=session, images=images, user=cast.a.uploader) is None
    settings.INFERENCE_AUTO_ON_UPLOAD = True
    job = services.jobs_on_images_stored(session=session, images=images[:1], user=cast.a.uploader)
    assert job.triggered_by == "upload" and job.images_total == 1 and job.created_by == cast.a.uploader


def test_upload_hook_does_nothing_without_an_active_model(cast, sent, storage):
    session, images = _session_with_images(cast, 1)
    assert services.jobs_on_images_stored(session=session, images=images, user=cast.a.uploader) is None
    assert not InferenceJob.objects.exists()


def test_the_model_reads_the_original_by_the_one_pixel_rule_not_a_stored_window(cast, storage):
    import numpy as np

    from portal.jobs.inference import image_rgb_uint8

    session = make_session(cast.a)
    rgb = np.full((32, 32, 3), 100, np.uint8)
    image = make_image(session, rgb=rgb, display=False)
    image.display_window_low, image.display_window_high = 50.0, 150.0  # an older rule's window
    out = image_rgb_uint8(image)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8 and int(out[0, 0, 0]) == 100


@pytest.mark.parametrize("suffix", [".pth", ".pkl"])
def test_a_model_whose_weights_run_code_fails_the_job_at_once_and_the_payload_never_runs(
        cast, tiny_bundle_dir, storage, sent, suffix, django_capture_on_commit_callbacks):
    """A bundle stored before uploads were checked (or placed in the store by other means): the worker
    refuses its weights when it loads them; the job fails at once with the file named, no retries."""
    from inference.data.classes import CLASS_NAMES
    from portal.mlmodels.bundles import file_sha256
    from portal.mlmodels.models import ModelVersion
    from tests.malicious_weights import make_malicious_bundle

    marker = storage / "marker"
    bundle = make_malicious_bundle(tiny_bundle_dir, storage / "store" / f"evil{suffix[1:]}", suffix=suffix,
                                   marker=marker)
    model_version = ModelVersion.objects.create(
        name="evil", version=suffix, class_names=list(CLASS_NAMES), bundle_path=str(bundle),
        weights_sha256=file_sha256(bundle / f"model_final{suffix}"))
    session, _ = _session_with_images(cast, 1)
    job = services.job_create(session=session, user=cast.a.uploader, model_version=model_version)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.job_run(job_id=job.pk, worker_id="w:1") == "failed"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.attempts == 1
    assert f"weights file model_final{suffix} holds objects other than tensors" in job.error_message
    assert "exec" in job.error_message and "nothing in it was run" in job.error_message
    job_image = job.job_images.get()
    assert job_image.status == JobImageStatus.FAILED and "refused" in job_image.error_message
    assert job_image.image.status == ImageStatus.FAILED
    assert not ResultSet.objects.filter(job=job, status=ResultSetStatus.COMPLETE).exists()
    assert not marker.exists()
