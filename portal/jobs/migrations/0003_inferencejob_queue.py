from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    """Each job keeps the queue it was first sent to. Jobs created before this migration get the
    ``INFERENCE_QUEUE`` of the host that migrates (the web tier's, which sent them)."""

    dependencies = [
        ('jobs', '0002_inferencejob_enqueue_count_and_more'),
    ]

    operations = [
        migrations.AddField(
            model_name='inferencejob',
            name='queue',
            field=models.CharField(default=settings.INFERENCE_QUEUE, help_text='The broker queue of its messages, fixed when the job is created (every retry and re-send goes there too).', max_length=64),
            preserve_default=False,
        ),
    ]
