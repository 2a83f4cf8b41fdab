"""Write ``imaging.SessionBlinding`` rows for the studies that exist (not yet unblinded): their validators
and the stain technicians of their centers are blinded from their sessions."""
from django.db import migrations


def forwards(apps, schema_editor):
    Study = apps.get_model("validation", "Study")
    Membership = apps.get_model("centers", "Membership")
    SessionBlinding = apps.get_model("imaging", "SessionBlinding")
    rows = []
    for study in Study.objects.exclude(status="unblinded"):
        users = set(study.validators.values_list("user_id", flat=True))
        users |= set(Membership.objects.filter(center__in=study.centers.all(), role="stain_technician")
                     .values_list("user_id", flat=True))
        source = f"validation.study:{study.pk}"
        for session_id in study.sessions.values_list("id", flat=True):
            rows += [SessionBlinding(user_id=u, session_id=session_id, source=source) for u in users]
    SessionBlinding.objects.bulk_create(rows, ignore_conflicts=True)


def backwards(apps, schema_editor):
    apps.get_model("imaging", "SessionBlinding").objects.filter(source__startswith="validation.study:").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("validation", "0001_initial"),
        ("imaging", "0003_session_blinding"),
        ("centers", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
