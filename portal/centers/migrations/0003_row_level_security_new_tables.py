"""Row-level security on the center-owned tables added by issues 16 and 17 (mask corrections, image-done
marks, notifications, stain images, datasets, training). ``rls_install`` is idempotent: it installs every
table of ``RLS_TABLES`` that exists at this point of the history. Back: off the tables it added only."""
from django.db import migrations

from portal.centers.rls import rls_install, rls_step_back

ADDED = (
    "validation_stainimage", "review_maskcorrection", "review_imagereviewdone", "core_notification",
    "datasets_sessiontraininguse", "datasets_datasetline", "datasets_datasetversion",
    "datasets_datasetversion_sessions", "training_trainingjob", "training_modelevaluation",
    "training_modelpromotion",
)


def step_back(apps, schema_editor) -> None:
    rls_step_back(schema_editor, ADDED)


class Migration(migrations.Migration):
    dependencies = [
        ("centers", "0002_row_level_security"),
        ("core", "0001_notification"),
        ("review", "0002_mask_corrections_and_image_done"),
        ("validation", "0003_stain_images"),
        ("datasets", "0001_training_data"),
        ("training", "0001_training_jobs_promotions"),
    ]

    operations = [migrations.RunPython(rls_install, step_back, elidable=False)]
