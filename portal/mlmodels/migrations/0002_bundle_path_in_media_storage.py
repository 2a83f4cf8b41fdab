from pathlib import Path

from django.conf import settings
from django.db import migrations, models


def bundle_paths_to_storage_names(apps, schema_editor):
    """Bundles copied into the old model store (MEDIA_ROOT/models/<dir>) are media files: name them by
    their storage name ``models/<dir>``. Directories elsewhere keep their absolute path."""
    ModelVersion = apps.get_model("mlmodels", "ModelVersion")
    media_root = Path(settings.MEDIA_ROOT).resolve()
    for model_version in ModelVersion.objects.all():
        path = Path(model_version.bundle_path)
        if not path.is_absolute():
            continue
        try:
            relative = path.resolve().relative_to(media_root)
        except ValueError:
            continue
        model_version.bundle_path = relative.as_posix()
        model_version.save(update_fields=["bundle_path"])


class Migration(migrations.Migration):

    dependencies = [
        ('mlmodels', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='modelversion',
            name='bundle_path',
            field=models.CharField(help_text='Media storage folder of the bundle (models/<name>-<version>-<sha>); an absolute path is a directory outside media storage.', max_length=500),
        ),
        migrations.RunPython(bundle_paths_to_storage_names, migrations.RunPython.noop),
    ]
