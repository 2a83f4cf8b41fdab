"""``manage.py backup`` / ``manage.py restore``: a backup restored into an EMPTY database and storage
passes ``verify_audit`` and holds the same rows and files (PostgreSQL: skipped on SQLite, a failure
when CI=true)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from portal.core.errors import DomainError

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the backup/restore test on PostgreSQL")
        pytest.skip("backup/restore wrap pg_dump/pg_restore: PostgreSQL only")


def _admin_dsn(dbname: str) -> str:
    conf = connection.settings_dict
    parts = [f"dbname={dbname}", f"host={conf.get('HOST') or '127.0.0.1'}", f"port={conf.get('PORT') or 5432}"]
    if conf.get("USER"):
        parts.append(f"user={conf['USER']}")
    if conf.get("PASSWORD"):
        parts.append(f"password={conf['PASSWORD']}")
    return " ".join(parts)


@pytest.fixture
def empty_database(postgres):
    """A new, empty database beside the test database (dropped afterwards); yields its URL."""
    name = f"{connection.settings_dict['NAME']}_restore"
    with psycopg.connect(_admin_dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    conf = connection.settings_dict
    auth = conf.get("USER") or "postgres"
    if conf.get("PASSWORD"):
        auth += f":{conf['PASSWORD']}"
    yield name, f"postgres://{auth}@{conf.get('HOST') or '127.0.0.1'}:{conf.get('PORT') or 5432}/{name}"
    with psycopg.connect(_admin_dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def _files(root: Path) -> dict[str, str]:
    """Every media file under ``root`` by name with its sha256, but the audit checkpoint objects."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not str(p.relative_to(root)).startswith("audit/")}


@pytest.mark.django_db(transaction=True)
def test_a_backup_restored_into_an_empty_database_passes_verify_audit(empty_database, storage, settings, tmp_path):
    from portal.audit.models import AuditEvent
    from portal.audit.services import audit_record, checkpoint_publish
    from portal.imaging.models import Image
    from portal.testing.cast import build_cast
    from portal.testing.review import make_reviewable_image

    settings.AUDIT_CHECKPOINT_PATH = tmp_path / "source_checkpoint.json"
    cast = build_cast()
    make_reviewable_image(cast.a, n=3)
    make_reviewable_image(cast.b, n=2)
    audit_record(actor=cast.a.admin, action="test.backup", center=cast.a.center, object_type="test")
    settings.AUDIT_CHECKPOINT_NAME = "host-b"  # another host's checkpoint object, published with the last head
    assert checkpoint_publish(force=True)
    events, images = AuditEvent.objects.count(), Image.objects.count()
    media_before = _files(Path(settings.MEDIA_ROOT))
    assert media_before and events >= 1

    backup = tmp_path / "backup"
    call_command("backup", str(backup))

    name, url = empty_database
    restored_media = tmp_path / "restored_media"
    env = {**os.environ, "DATABASE_URL": url, "MEDIA_ROOT": str(restored_media), "AUDIT_CHECKPOINT_NAME": "host-a",
           "AUDIT_CHECKPOINT_PATH": str(tmp_path / "restored_checkpoint.json"), "PYTHONPATH": str(REPO)}
    if settings.AUDIT_HMAC_KEY:
        env["AUDIT_HMAC_KEY"] = settings.AUDIT_HMAC_KEY
    done = _manage("restore", str(backup), env=env)
    assert done.returncode == 0, done.stderr
    verified = _manage("verify_audit", env=env)
    assert verified.returncode == 0, verified.stderr + verified.stdout
    assert f"audit chain OK: {events} events" in verified.stdout
    # Host B's checkpoint object came back (for the restored database) and was compared, beside this host's.
    restored_b = json.loads((restored_media / "audit/checkpoints/host-b.json").read_text(encoding="utf-8"))
    assert [(key.split("|")[0], entry["sequence"]) for key, entry in restored_b["chains"].items()] == [(name, events)]
    assert "object audit/checkpoints/host-a.json, object audit/checkpoints/host-b.json" in verified.stdout

    with psycopg.connect(_admin_dsn(name)) as restored:
        assert restored.execute("SELECT count(*) FROM imaging_image").fetchone()[0] == images
        assert restored.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] == events
        forced = restored.execute("SELECT relforcerowsecurity FROM pg_class WHERE relname = 'imaging_image'")
        assert forced.fetchone()[0] is True  # the policies came back with the data
    assert _files(restored_media) == media_before


@pytest.mark.django_db(transaction=True)
def test_restore_refuses_a_damaged_backup_and_stores_nothing(empty_database, storage, settings, tmp_path):
    from portal.testing.cast import build_cast
    from portal.testing.review import make_reviewable_image

    settings.AUDIT_CHECKPOINT_PATH = tmp_path / "source_checkpoint.json"
    make_reviewable_image(build_cast().a, n=1)
    backup = tmp_path / "backup"
    call_command("backup", str(backup))
    victim = next(p for p in sorted((backup / "media").rglob("*")) if p.is_file())
    victim.write_bytes(victim.read_bytes() + b"tampered")

    name, url = empty_database
    env = {**os.environ, "DATABASE_URL": url, "MEDIA_ROOT": str(tmp_path / "restored_media"),
           "AUDIT_CHECKPOINT_PATH": str(tmp_path / "restored_checkpoint.json"), "PYTHONPATH": str(REPO)}
    done = _manage("restore", str(backup), env=env)
    assert done.returncode != 0 and "does not match its sha256" in done.stderr
    with psycopg.connect(_admin_dsn(name)) as restored:
        assert restored.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0
    assert not (tmp_path / "restored_media").exists()


@pytest.mark.django_db
def test_restore_refuses_a_database_that_is_not_empty(postgres, tmp_path):
    from portal.ops.backup import FORMAT, backup_restore

    (tmp_path / "manifest.json").write_text(f'{{"format": "{FORMAT}", "media": []}}', encoding="utf-8")
    with pytest.raises(DomainError, match="not empty"):
        backup_restore(src=tmp_path)
