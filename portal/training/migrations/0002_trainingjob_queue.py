from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    """Each training job keeps the queue it was first sent to. Jobs created before this migration get the
    ``TRAINING_QUEUE`` of the host that migrates (the web tier's, which sent them)."""

    dependencies = [
        ('training', '0001_training_jobs_promotions'),
    ]

    operations = [
        migrations.AddField(
            model_name='trainingjob',
            name='queue',
            field=models.CharField(default=settings.TRAINING_QUEUE, help_text='The broker queue of its messages, fixed when the job is created (every retry and re-send goes there too).', max_length=64),
            preserve_default=False,
        ),
    ]
