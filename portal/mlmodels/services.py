"""Registry writes: register a bundle, upload a zipped bundle, choose the active model, delete unused ones."""
from __future__ import annotations

import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, models, transaction
from django.utils.translation import gettext as _

from portal.audit.services import audit_record
from portal.centers.access import user_may
from portal.centers.models import Center
from portal.centers.policy import Action
from portal.core.errors import Conflict, DomainError
from portal.core.media import media_delete, media_walk
from portal.mlmodels.bundles import BundleInfo, bundle_copy_into_store, bundle_read, bundle_unpack_zip
from portal.mlmodels.models import ActiveModel, ModelVersion


def _snapshot(model_version: ModelVersion) -> dict:
    return {
        "name": model_version.name, "version": model_version.version,
        "center": str(model_version.center_id) if model_version.center_id else None,
        "weights_sha256": model_version.weights_sha256, "class_names": model_version.class_names,
    }


def model_can_manage(*, user, center: Center | None) -> bool:
    """Center admins manage their center's models; only superusers manage site-wide models."""
    if user is None:
        return True  # system (seed_demo, management commands)
    if center is None:
        return bool(user.is_superuser)
    return user_may(user, center.pk, Action.MODELS_MANAGE)


def _require_manage(*, user, center: Center | None) -> None:
    if not model_can_manage(user=user, center=center):
        what = "site-wide models" if center is None else "this center's models"
        raise DomainError(_('Only an administrator may manage %(what)s.') % {"what": what}, status_code=403)


def model_is_used(*, model_version: ModelVersion) -> bool:
    """True once a job, result set, training job or promotion refers to the model version (any relation
    that protects it from deletion): it is then immutable."""
    if model_version.jobs.exists() or model_version.result_sets.exists():
        return True
    for relation in model_version._meta.related_objects:  # higher apps' links (training), without importing them
        if relation.on_delete is models.PROTECT and relation.related_model.objects.filter(
                **{relation.field.name: model_version}).exists():
            return True
    return False


@transaction.atomic
def _register(*, info: BundleInfo, center: Center | None, user, activate: bool) -> ModelVersion:
    existing = ModelVersion.objects.filter(name=info.name, version=info.version).first()
    if existing is not None:
        if existing.weights_sha256 != info.weights_sha256:
            raise Conflict(
                _('Model %(name)s %(version)s is already registered with other weights.') % {"name": info.name, "version": info.version},
                extra={"registered_sha256": existing.weights_sha256, "uploaded_sha256": info.weights_sha256},
            )
        if existing.center_id != (center.pk if center else None):
            raise Conflict(_('Model %(name)s %(version)s is already registered for another owner.') % {"name": info.name, "version": info.version})
        model_version = existing
    else:
        stored = bundle_copy_into_store(info, settings.MODEL_STORE_PREFIX)
        model_version = ModelVersion(
            name=info.name, version=info.version, center=center, class_names=info.class_names,
            metrics=info.metrics, training_summary=info.training_summary, weights_sha256=info.weights_sha256,
            bundle_path=stored, created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        model_version.full_clean()
        try:
            with transaction.atomic():
                model_version.save()
        except IntegrityError:  # registered concurrently: same outcome as the branch above
            model_version = ModelVersion.objects.get(name=info.name, version=info.version)
            if model_version.weights_sha256 != info.weights_sha256:
                raise Conflict(_('Model %(name)s %(version)s is already registered with other weights.') % {"name": info.name, "version": info.version})
        else:
            audit_record(actor=user, action="model_version.create", center=center, obj=model_version,
                         after=_snapshot(model_version))
    if activate:
        model_activate(model_version=model_version, center=center, user=user)
    return model_version


def model_register_bundle(*, path, center: Center | None = None, user=None, activate: bool = True) -> ModelVersion:
    """Register a bundle directory (or a ``.zip`` of one); idempotent by name + version + sha256.

    The bundle is verified (its weights must match the sha256 it declares), copied into media storage
    under ``settings.MODEL_STORE_PREFIX`` (local disk or S3; workers fetch it from there) and, with
    ``activate``, made the active model of ``center`` (or the site default when ``center`` is None).
    Registering the same bundle again returns the same row; the same name and version with other weights
    is a ``Conflict``.
    """
    _require_manage(user=user, center=center)
    source = Path(path)
    if source.is_file() and source.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="bundle-upload-") as tmp:
            root = bundle_unpack_zip(source, Path(tmp), max_bytes=settings.MODEL_UPLOAD_MAX_BYTES)
            return _register(info=bundle_read(root), center=center, user=user, activate=activate)
    return _register(info=bundle_read(source), center=center, user=user, activate=activate)


def model_upload_bundle(*, uploaded_file: UploadedFile, center: Center | None, user, activate: bool) -> ModelVersion:
    """Register a zipped bundle uploaded through the API or the registry page."""
    _require_manage(user=user, center=center)
    if uploaded_file.size is not None and uploaded_file.size > settings.MODEL_UPLOAD_MAX_BYTES:
        raise DomainError(_("The bundle is too large."), extra={"max_bytes": settings.MODEL_UPLOAD_MAX_BYTES})
    with tempfile.TemporaryDirectory(prefix="bundle-upload-") as tmp:
        zip_path = Path(tmp) / "upload.zip"
        with open(zip_path, "wb") as out:
            for chunk in uploaded_file.chunks():
                out.write(chunk)
        root = bundle_unpack_zip(zip_path, Path(tmp) / "unpacked", max_bytes=settings.MODEL_UPLOAD_MAX_BYTES)
        return _register(info=bundle_read(root), center=center, user=user, activate=activate)


@transaction.atomic
def model_activate(*, model_version: ModelVersion, center: Center | None, user=None) -> ActiveModel:
    """Make ``model_version`` the active model of ``center`` (None: the site default)."""
    _require_manage(user=user, center=center)
    if model_version.center_id is not None and model_version.center_id != (center.pk if center else None):
        raise DomainError(_("A center's own model can only be activated for that center."))
    current = ActiveModel.objects.select_for_update().filter(center=center).first()
    before = str(current.model_version_id) if current else None
    if current is None:
        current = ActiveModel(center=center, model_version=model_version)
    current.model_version = model_version
    current.full_clean(validate_unique=False)
    current.save()
    if before != str(model_version.pk):
        audit_record(actor=user, action="active_model.update", center=center, obj=model_version,
                     before={"model_version": before}, after={"model_version": str(model_version.pk)})
    return current


@transaction.atomic
def model_delete(*, model_version: ModelVersion, user) -> None:
    """Delete a model version that no job has used and that is not active anywhere."""
    model_version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
    _require_manage(user=user, center=model_version.center)
    if model_is_used(model_version=model_version):
        raise Conflict(_("This model version has been used by jobs; it is immutable and cannot be deleted."))
    if ActiveModel.objects.filter(model_version=model_version).exists():
        raise Conflict(_("This model version is active; activate another one first."))
    snapshot = _snapshot(model_version)
    folder = model_version.bundle_path
    audit_record(actor=user, action="model_version.delete", center=model_version.center, obj=model_version,
                 before=snapshot)
    model_version.delete()
    in_store = folder.startswith(settings.MODEL_STORE_PREFIX + "/") and ".." not in folder.split("/")
    if in_store and not ModelVersion.objects.filter(bundle_path=folder).exists():
        transaction.on_commit(lambda: media_delete(names=list(media_walk(folder))))
