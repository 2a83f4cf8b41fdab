"""Writes for validation studies, by concern: ``design`` (create, validators, picks, blinding rows),
``opening`` (freeze the model output, build the cell lists), ``scoring`` (scores, stains, missed cells),
``staining`` (fluorescence images, their registration, CSV import of stain results) and ``signing``
(sign, lock, unblind). Every write is audited. The pure matching and assignment rules
live in ``portal.validation.lib``."""
from portal.validation.services.design import (
    STUDY_VALIDATOR_NOT_FOUND,
    VALIDATOR_NOT_FOUND,
    blinded_user_ids,
    blinding_on_membership_change,
    blinding_source,
    pick_add,
    pick_remove,
    study_blinding_sync,
    study_create,
    study_fields_ensure,
    study_images,
    study_validator_add,
    study_validator_add_by_username,
    study_validator_remove,
    study_validator_remove_by_username,
)
from portal.validation.services.opening import detection_fingerprint, model_output_hash, study_open
from portal.validation.services.scoring import assignment_score, missed_cell_add, stain_enter
from portal.validation.services.signing import (
    LOCK_MEANING,
    UNBLIND_MEANING,
    all_scores_hash,
    scores_hash_for,
    signature_password_verify,
    study_cell_rows,
    study_lock,
    study_lock_sign,
    study_sign,
    study_unblind,
    study_unblind_sign,
)
from portal.validation.services.staining import (
    CSV_MAX_BYTES,
    MERGED,
    StainImportPreview,
    stain_image_delete,
    stain_image_register_auto,
    stain_image_register_manual,
    stain_image_upload,
    stain_results_import,
)

__all__ = [
    "STUDY_VALIDATOR_NOT_FOUND", "VALIDATOR_NOT_FOUND",
    "LOCK_MEANING", "UNBLIND_MEANING",
    "all_scores_hash", "assignment_score", "blinded_user_ids", "blinding_on_membership_change", "blinding_source",
    "detection_fingerprint", "missed_cell_add", "model_output_hash", "pick_add", "pick_remove", "scores_hash_for", "signature_password_verify", "study_lock_sign", "study_unblind_sign",
    "CSV_MAX_BYTES", "MERGED", "StainImportPreview", "stain_image_delete", "stain_image_register_auto", "stain_image_register_manual",
    "stain_image_upload", "stain_results_import",
    "stain_enter", "study_blinding_sync", "study_cell_rows", "study_create", "study_fields_ensure", "study_images",
    "study_lock", "study_open", "study_sign", "study_unblind", "study_validator_add",
    "study_validator_add_by_username", "study_validator_remove", "study_validator_remove_by_username",
]
