"""Model registry: register/upload bundles with sha256 verification, activation, immutability."""
from __future__ import annotations

import shutil
import tempfile
import zipfile

import pytest

from portal.audit.models import AuditEvent
from portal.core.errors import Conflict, DomainError
from portal.core.media import media_walk
from portal.mlmodels.bundles import BundleInvalid
from portal.mlmodels.models import ActiveModel, ModelVersion
from portal.mlmodels.selectors import model_active_for_center
from portal.mlmodels.services import model_activate, model_delete, model_register_bundle


def _zip(bundle_dir, zip_path):
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(bundle_dir.iterdir()):
            archive.write(path, f"bundle/{path.name}")
    return zip_path


def test_it_registers_a_bundle_once_by_name_version_and_sha(cast, storage, tiny_bundle_dir):
    first = model_register_bundle(path=tiny_bundle_dir)
    again = model_register_bundle(path=tiny_bundle_dir)
    assert first.pk == again.pk
    assert ModelVersion.objects.count() == 1
    assert len(first.weights_sha256) == 64 and first.class_names[0] == "round_spermatid"
    assert model_active_for_center(center=cast.a.center) == first  # site default
    assert AuditEvent.objects.filter(action="model_version.create").count() == 1


def test_it_refuses_same_name_and_version_with_other_weights(cast, storage, tiny_bundle_dir, tmp_path):
    model_register_bundle(path=tiny_bundle_dir)
    from portal.testing.jobs import tiny_bundle

    other = tiny_bundle(tmp_path / "other", jitter=1e-4)  # same name and version, other weights
    with pytest.raises(Conflict):
        model_register_bundle(path=other)


def test_it_refuses_a_bundle_whose_weights_do_not_match_their_sha(cast, storage, tiny_bundle_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle_dir, broken)
    with open(broken / "model_final.safetensors", "r+b") as handle:
        handle.seek(1000)
        handle.write(b"corrupt!")
    with pytest.raises(BundleInvalid, match="sha256"):
        model_register_bundle(path=broken)
    assert not ModelVersion.objects.exists()


def test_it_activates_per_center_with_site_default_fallback(cast, storage, tiny_bundle_dir):
    site = model_register_bundle(path=tiny_bundle_dir)
    own = ModelVersion.objects.create(name="own", version="1", center=cast.a.center, class_names=["x"],
                                      weights_sha256="1" * 64, bundle_path="/nowhere")
    model_activate(model_version=own, center=cast.a.center, user=cast.a.admin)
    assert model_active_for_center(center=cast.a.center) == own
    assert model_active_for_center(center=cast.b.center) == site
    with pytest.raises(DomainError):  # center B's admin may not activate A's model
        model_activate(model_version=own, center=cast.b.center, user=cast.b.admin)
    with pytest.raises(DomainError):  # a reviewer is no admin
        model_activate(model_version=site, center=cast.a.center, user=cast.a.reviewer)


def test_a_used_model_cannot_be_deleted(cast, storage, tiny_bundle_dir):
    from portal.jobs.services import job_create
    from portal.testing.jobs import make_image, make_session

    model_version = model_register_bundle(path=tiny_bundle_dir, activate=False)
    session = make_session(cast.a)
    make_image(session, seed=1)
    job_create(session=session, user=cast.a.uploader, model_version=model_version)
    with pytest.raises(Conflict, match="immutable"):
        model_delete(model_version=model_version, user=cast.superuser)


def test_an_unused_model_is_deleted_with_its_stored_files(cast, storage, tiny_bundle_dir,
                                                          django_capture_on_commit_callbacks):
    model_version = model_register_bundle(path=tiny_bundle_dir, activate=False)
    stored = list(media_walk(model_version.bundle_path))
    assert model_version.bundle_path.startswith("models/") and any(n.endswith(".safetensors") for n in stored)
    with django_capture_on_commit_callbacks(execute=True):
        model_delete(model_version=model_version, user=cast.superuser)
    assert not ModelVersion.objects.filter(pk=model_version.pk).exists()
    assert list(media_walk(model_version.bundle_path)) == []


def test_center_admin_uploads_a_zipped_bundle_through_the_api(cast, storage, tiny_bundle_dir, tmp_path, client):
    archive = _zip(tiny_bundle_dir, tmp_path / "bundle.zip")
    client.force_login(cast.a.admin)
    with open(archive, "rb") as handle:
        response = client.post("/api/v1/models/", {"file": handle, "center_id": str(cast.a.center.pk),
                                                   "activate": "true"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["center_id"] == str(cast.a.center.pk) and body["is_used"] is False
    assert ActiveModel.objects.get(center=cast.a.center).model_version_id.hex == body["id"].replace("-", "")
    # center B sees neither the model nor may activate it
    client.force_login(cast.b.admin)
    assert client.get(f"/api/v1/models/{body['id']}/").status_code == 404
    assert body["id"] not in client.get("/api/v1/models/").content.decode()


def test_an_uploader_may_not_upload_a_model(cast, storage, tiny_bundle_dir, tmp_path, client):
    archive = _zip(tiny_bundle_dir, tmp_path / "bundle.zip")
    client.force_login(cast.a.uploader)
    with open(archive, "rb") as handle:
        response = client.post("/api/v1/models/", {"file": handle, "center_id": str(cast.a.center.pk)})
    assert response.status_code == 403
    assert response.json()["message"]


def test_a_zip_with_an_unsafe_path_is_refused(cast, storage, tmp_path, client):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("../evil.txt", "x")
    client.force_login(cast.a.admin)
    with open(archive, "rb") as handle:
        response = client.post("/api/v1/models/", {"file": handle, "center_id": str(cast.a.center.pk)})
    assert response.status_code == 400
    assert "unsafe" in response.json()["message"]


def test_registry_page_lists_models_and_offers_activation_to_admins(cast, storage, tiny_bundle_dir, client):
    model_version = model_register_bundle(path=tiny_bundle_dir)
    client.force_login(cast.a.admin)
    page = client.get("/models/").content.decode()
    assert model_version.name in page and "Activate for CA" in page and "Upload and verify" in page
    response = client.post(f"/models/{model_version.pk}/activate/", {"center_id": str(cast.a.center.pk)})
    assert response.status_code == 302
    assert ActiveModel.objects.get(center=cast.a.center).model_version == model_version
    client.force_login(cast.a.reviewer)
    page = client.get("/models/").content.decode()
    assert "Upload and verify" not in page


def test_blinded_roles_see_no_registry_unless_they_hold_another_role(cast, storage, tiny_bundle_dir, client):
    from portal.centers.models import Membership, Role

    model_version = model_register_bundle(path=tiny_bundle_dir)
    for blinded in (cast.a.validator, cast.a.stain):
        client.force_login(blinded)
        assert client.get("/models/").status_code == 404
        assert client.get("/api/v1/models/").status_code == 404
        assert client.get(f"/api/v1/models/{model_version.pk}/").status_code == 404
    Membership.objects.create(user=cast.a.validator, center=cast.a.center, role=Role.REVIEWER)
    client.force_login(cast.a.validator)
    assert model_version.name in client.get("/models/").content.decode()
    assert [row["id"] for row in client.get("/api/v1/models/").json()] == [str(model_version.pk)]


@pytest.mark.parametrize("suffix", [".pth", ".pkl"])
def test_an_uploaded_bundle_whose_weights_run_code_is_refused_and_nothing_is_stored(
        cast, storage, tiny_bundle_dir, tmp_path, client, suffix):
    from tests.malicious_weights import make_malicious_bundle

    marker = tmp_path / "marker"
    bundle = make_malicious_bundle(tiny_bundle_dir, tmp_path / "evil", suffix=suffix, marker=marker)
    archive = _zip(bundle, tmp_path / "evil.zip")
    client.force_login(cast.a.admin)
    with open(archive, "rb") as handle:
        response = client.post("/api/v1/models/", {"file": handle, "center_id": str(cast.a.center.pk),
                                                   "activate": "true"})
    assert response.status_code == 400, response.content
    body = response.json()
    assert f"The weights file model_final{suffix} is refused" in body["message"]
    assert body["extra"]["weights"] == f"model_final{suffix}" and "exec" in body["extra"]["refused"]
    assert str(tmp_path) not in response.content.decode() and tempfile.gettempdir() not in response.content.decode()
    assert not ModelVersion.objects.exists() and not ActiveModel.objects.exists()
    assert list(media_walk("models")) == []
    assert not marker.exists()
