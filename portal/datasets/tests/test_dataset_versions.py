"""Dataset versions: consent, labels from final calls and sorted populations, hashes, patient splits,
pooling, exports that never show another center's images."""
import hashlib
import io
import json
import zipfile

import pytest
from django.core.files.storage import default_storage

from portal.audit.models import AuditEvent
from portal.centers.models import Role
from portal.centers.services import membership_grant
from portal.core.errors import DomainError
from portal.datasets.services import (
    dataset_version_coco,
    dataset_version_create,
    dataset_version_export_zip,
    training_use_set,
)
from portal.testing.training import make_session_for, make_synthetic_image, review_image

pytestmark = pytest.mark.django_db


def _reviewed_session(cc, *, seeds, patient=None, consent=True):
    session = make_session_for(cc, patient=patient)
    done = []
    for seed in seeds:
        image, dets, fp = make_synthetic_image(session, seed=seed)
        done.append(review_image(cc, image, dets, fp))
    if consent:
        training_use_set(user=cc.admin, session=session, consent=True)
    return session, done


def test_it_refuses_sessions_without_consent(cast, storage):
    session, _ = _reviewed_session(cast.a, seeds=[1], consent=False)
    with pytest.raises(DomainError) as err:
        dataset_version_create(user=cast.a.admin, center=cast.a.center, name="d", sessions=[session])
    assert err.value.extra["sessions_without_consent"] == [str(session.pk)]
    training_use_set(user=cast.a.admin, session=session, consent=False)
    assert not default_storage.exists("datasets")


def test_only_the_owning_centers_admin_sets_training_use_and_it_is_audited(cast, storage):
    session = make_session_for(cast.a)
    for user in (cast.a.reviewer, cast.b.admin):
        with pytest.raises(DomainError):
            training_use_set(user=user, session=session, consent=True)
    training_use_set(user=cast.a.admin, session=session, consent=True, sorted_population="1C haploid",
                     sorted_class="round_spermatid", purity_percent=92.5)
    event = AuditEvent.objects.filter(action="datasets.training_use.update").get()
    assert event.after == {"consent": True, "sorted_population": "1C haploid", "sorted_class": "round_spermatid",
                           "purity_percent": 92.5}
    with pytest.raises(DomainError):
        training_use_set(user=cast.a.admin, session=session, consent=True, sorted_class="not_a_class",
                         sorted_population="x")


def test_labels_follow_final_calls_and_left_out_ones_are_counted(cast, storage):
    session, done = _reviewed_session(cast.a, seeds=[3, 4])
    version = dataset_version_create(user=cast.a.admin, center=cast.a.center, name="line", sessions=[session])
    coco = dataset_version_coco(version)
    totals = {k: sum(d[k] for d in done) for k in done[0]}
    assert len(coco["images"]) == 2
    # accepted + corrected + drawn; rejected absent; uncertain and disputed left out and counted
    assert len(coco["annotations"]) == totals["accepted"] + totals["corrected"] + totals["drawn"]
    assert version.counts["left_out"]["uncertain_or_disputed"] == totals["uncertain"] + totals["disputed"]
    assert version.counts["left_out"]["rejected"] == totals["rejected"]
    assert {a["label_source"] for a in coco["annotations"]} == {"reviewed"}
    corrected = [a for a in coco["annotations"] if a["model_class"] != coco["categories"][a["category_id"] - 1]["name"]]
    assert len(corrected) == totals["corrected"]
    assert all(i["um_per_px"] == 0.25 for i in coco["images"])


def test_sorted_population_labels_undecided_cells_and_keeps_reviewer_calls(cast, storage):
    session = make_session_for(cast.a)
    image, dets, fp = make_synthetic_image(session, seed=5)
    from portal.review.services import decision_set

    decision_set(user=cast.a.reviewer, detection=dets[0], verdict="accept", class_name="erythrocyte")
    training_use_set(user=cast.a.admin, session=session, consent=True, sorted_population="1C haploid",
                     sorted_class="round_spermatid", purity_percent=95)
    version = dataset_version_create(user=cast.a.admin, center=cast.a.center, name="sorted", sessions=[session])
    coco = dataset_version_coco(version)
    sources = [a["label_source"] for a in coco["annotations"]]
    assert sources.count("reviewed") == 1
    assert sources.count("sorted-population") == len(dets)  # the other true cells and the false positive
    by_source = version.counts["per_class_source"]
    assert by_source["erythrocyte"] == {"reviewed": 1}
    assert by_source["round_spermatid"]["sorted-population"] == len(dets)


def test_version_files_match_the_manifest_hashes(cast, storage):
    session, _ = _reviewed_session(cast.a, seeds=[6])
    version = dataset_version_create(user=cast.a.admin, center=cast.a.center, name="h", sessions=[session])
    for entry in version.manifest["files"]:
        with default_storage.open(f"{version.storage_prefix}/{entry['name']}", "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == entry["sha256"]
    with default_storage.open(f"{version.storage_prefix}/manifest.json", "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == version.manifest_sha256


def test_splits_are_by_patient_and_the_test_patients_stay_frozen(cast, storage):
    sessions = [_reviewed_session(cast.a, seeds=[10 + k], consent=True)[0] for k in range(5)]
    v1 = dataset_version_create(user=cast.a.admin, center=cast.a.center, name="frozen", sessions=sessions)
    test_patients = v1.manifest["test_patients"]
    assert test_patients and v1.line.test_patient_codes == test_patients
    coco1 = dataset_version_coco(v1)
    per_patient = {}
    for image in coco1["images"]:
        per_patient.setdefault(image["patient_id"], set()).add(image["split"])
    assert all(len(s) == 1 for s in per_patient.values())
    more = [_reviewed_session(cast.a, seeds=[30 + k])[0] for k in range(3)]
    v2 = dataset_version_create(user=cast.a.admin, center=cast.a.center, name="frozen", sessions=sessions + more)
    assert v2.number == 2 and v2.manifest["test_patients"] == test_patients
    new_patients = {s.patient.code for s in more}
    assert all(i["split"] != "test" for i in dataset_version_coco(v2)["images"] if i["patient_id"] in new_patients)


def test_pooling_needs_each_centers_consent_and_the_export_hides_other_centers_images(cast, storage):
    own, _ = _reviewed_session(cast.a, seeds=[40])
    foreign, _ = _reviewed_session(cast.b, seeds=[41], consent=False)
    pooler = cast.a.admin
    membership_grant(user=pooler, center=cast.b.center, role=Role.CENTER_ADMIN)
    with pytest.raises(DomainError):
        dataset_version_create(user=pooler, center=cast.a.center, name="pool", sessions=[own, foreign])
    training_use_set(user=cast.b.admin, session=foreign, consent=True)
    with pytest.raises(DomainError):  # cast.a.reviewer manages no center's datasets
        dataset_version_create(user=cast.a.reviewer, center=cast.a.center, name="pool", sessions=[own])
    version = dataset_version_create(user=pooler, center=cast.a.center, name="pool", sessions=[own, foreign])
    assert sorted(version.center_ids) == sorted([str(cast.a.center.pk), str(cast.b.center.pk)])
    with dataset_version_export_zip(user=cast.a.reviewer, version=version) as handle:
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    coco = json.loads(archive.read("annotations.json"))
    manifest = json.loads(archive.read("manifest.json"))
    assert {i["center"] for i in coco["images"]} == {str(cast.a.center.pk)}
    assert manifest["images_of_other_centers_left_out"] == 1
    assert foreign.patient.code not in json.dumps(manifest) and str(foreign.pk) not in json.dumps(manifest)
    assert own.patient.code in manifest["patients"]
    images = [n for n in archive.namelist() if n.startswith("images/")]
    assert len(images) == 1
    for entry in manifest["files"]:
        assert hashlib.sha256(archive.read(entry["name"])).hexdigest() == entry["sha256"]
    assert AuditEvent.objects.filter(action="datasets.version.export", actor=cast.a.reviewer).exists()


def test_a_reviewers_corrected_mask_is_the_datasets_mask(cast, storage):
    from portal.review.services import correction_set

    session = make_session_for(cast.a)
    image, dets, fp = make_synthetic_image(session, seed=7)
    review_image(cast.a, image, dets, fp)
    det = dets[0]  # accepted by the reviewer as it is
    x1, y1 = int(det.x1), int(det.y1)
    square = [[x1, y1], [x1 + 6, y1], [x1 + 6, y1 + 6], [x1, y1 + 6]]
    correction = correction_set(user=cast.a.reviewer, detection=det, polygon=square)
    training_use_set(user=cast.a.admin, session=session, consent=True)
    version = dataset_version_create(user=cast.a.admin, center=cast.a.center, name="masks", sessions=[session])
    coco = dataset_version_coco(version)
    ann = next(a for a in coco["annotations"] if a["portal_detection_id"] == str(det.pk))
    assert ann["mask_corrected"] is True
    assert ann["area"] == correction.area_px != det.area_px
    assert ann["segmentation"]["counts"] == correction.mask_rle["counts"]
    assert coco["info"]["mask_rule"]
    untouched = [a for a in coco["annotations"] if a["portal_detection_id"] != str(det.pk)]
    assert untouched and not any(a["mask_corrected"] for a in untouched)
