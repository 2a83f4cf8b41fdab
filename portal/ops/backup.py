"""Backup and restore of one portal: the PostgreSQL database (``pg_dump``/``pg_restore``), the media
(read and written through ``default_storage``, so local files and an object store alike) and the
audit checkpoints (the signed chain heads kept outside the database: this host's file and every host's
object ``audit/checkpoints/<name>.json`` in the storage).

A backup is a folder::

    manifest.json            what is inside: format, time, database, media files with sha256, chain heads
    database.dump            pg_dump custom format (schema, data, row-level security policies)
    media/<name>             every file of the storage but the checkpoint objects
    audit_checkpoint.json    this database's signed chain heads (this host's checkpoint file)
    audit_checkpoint_objects.json   the same from every host's checkpoint object, by object name

``backup_restore`` loads it into an EMPTY database and storage, checks every file's sha256, and moves
the checkpoint file and objects forward for the restored database (then publishes this host's object);
``manage.py verify_audit`` then passes.
Both run as system work (every center): ``manage.py`` enters the system scope, and the PostgreSQL tools
get it through ``PGOPTIONS`` together with ``--enable-row-security`` (a non-superuser owner cannot
dump or load tables whose row security is forced otherwise).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from portal.core.errors import DomainError
from portal.core.media import media_open_stream

FORMAT = "spermatid-portal-backup/1"
CHUNK = 1024 * 1024
SCOPE_OPTIONS = "-c app.center_ids=* -c app.audit_all=on"


@dataclass(frozen=True)
class BackupSummary:
    folder: Path
    media_files: int
    media_bytes: int
    audit_sequence: int


def _postgres_env() -> tuple[list[str], dict[str, str]]:
    """Connection arguments and environment of the PostgreSQL tools for the default database."""
    if connection.vendor != "postgresql":
        raise DomainError("Backup and restore need PostgreSQL (DATABASE_URL=postgres://...); for the embedded "
                          "SQLite demo, copy var/ while the portal is stopped.")
    conf = connection.settings_dict
    args = ["--dbname", conf["NAME"]]
    if conf.get("HOST"):
        args += ["--host", conf["HOST"]]
    if conf.get("PORT"):
        args += ["--port", str(conf["PORT"])]
    if conf.get("USER"):
        args += ["--username", conf["USER"]]
    env = {**os.environ, "PGOPTIONS": SCOPE_OPTIONS}
    if conf.get("PASSWORD"):
        env["PGPASSWORD"] = conf["PASSWORD"]
    return args, env


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DomainError(f"{command[0]} failed: {done.stderr.strip()[-2000:]}")


def _storage_names(folder: str = "") -> list[str]:
    """Every file name in the storage, recursively, but the audit checkpoint objects (backed up apart:
    restored for the restored database, merged forward)."""
    from portal.audit.services import CHECKPOINT_OBJECT_DIR

    folders, files = default_storage.listdir(folder)
    names = [f"{folder}/{f}" if folder else f for f in files]
    for sub in folders:
        path = f"{folder}/{sub}" if folder else sub
        if path != CHECKPOINT_OBJECT_DIR:
            names += _storage_names(path)
    return sorted(names)


def _sha256_copy(source, target) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _sha256_of(handle) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def backup_create(*, dest: Path) -> BackupSummary:
    """Write a backup into the folder ``dest`` (created; must be empty)."""
    from portal.audit.models import AuditChainHead
    from portal.audit.services import checkpoint_entries, checkpoint_objects

    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise DomainError(f"{dest} is not empty: a backup goes into a new folder.")
    (dest / "media").mkdir(parents=True, exist_ok=True)
    args, env = _postgres_env()
    _run(["pg_dump", "--format=custom", "--enable-row-security", "--file", str(dest / "database.dump"), *args], env)

    files, total = [], 0
    for name in _storage_names():
        target = dest / "media" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with media_open_stream(name) as source, open(target, "wb") as out:
            sha256, size = _sha256_copy(source, out)
        files.append({"name": name, "sha256": sha256, "size": size})
        total += size

    checkpoint = checkpoint_entries()
    (dest / "audit_checkpoint.json").write_text(json.dumps(checkpoint, indent=1, sort_keys=True), encoding="utf-8")
    objects, unreadable = checkpoint_objects()
    if unreadable:
        raise DomainError(f"Could not read the audit checkpoint objects: {', '.join(unreadable)}")
    (dest / "audit_checkpoint_objects.json").write_text(json.dumps(objects, indent=1, sort_keys=True),
                                                        encoding="utf-8")
    head = AuditChainHead.objects.filter(pk=1).values("sequence", "hash", "chain_id").first() or {}
    manifest = {
        "format": FORMAT, "created_at": timezone.now().isoformat(), "database": connection.settings_dict["NAME"],
        "audit_head": head, "media": files,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return BackupSummary(folder=dest, media_files=len(files), media_bytes=total, audit_sequence=head.get("sequence", 0))


def _database_is_empty() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        return cursor.fetchone()[0] == 0


def backup_restore(*, src: Path) -> BackupSummary:
    """Load the backup folder ``src`` into the (empty) database and storage of these settings."""
    from portal.audit.services import checkpoint_objects_restore, checkpoint_publish, checkpoint_write

    src = Path(src)
    manifest_path = src / "manifest.json"
    if not manifest_path.exists():
        raise DomainError(f"{src} holds no manifest.json: not a backup folder.")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise DomainError(f"Unknown backup format {manifest.get('format')!r}.")
    args, env = _postgres_env()
    if not _database_is_empty():
        raise DomainError("The database is not empty: restore into a new, empty database.")
    # Every name must stay inside the backup's media folder, and every file match the manifest, so a
    # damaged or tampered backup stores nothing.
    for entry in manifest["media"]:
        name = PurePosixPath(str(entry.get("name", "")))
        if not name.parts or name.is_absolute() or ".." in name.parts or "\\" in str(name):
            raise DomainError(f"media name {entry.get('name')!r} in the manifest leaves the backup folder.")
    for entry in manifest["media"]:
        with open(src / "media" / entry["name"], "rb") as handle:
            if _sha256_of(handle) != entry["sha256"]:
                raise DomainError(f"media/{entry['name']} does not match its sha256 in the manifest.")
    _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--enable-row-security",
          *args, str(src / "database.dump")], env)
    connection.close()  # tables appeared under this connection: start afresh

    total = 0
    for entry in manifest["media"]:
        name = entry["name"]
        if default_storage.exists(name):
            with media_open_stream(name) as handle:
                if _sha256_of(handle) != entry["sha256"]:
                    raise DomainError(f"The storage already holds a different {name}.")
            continue
        with open(src / "media" / name, "rb") as handle:
            saved = default_storage.save(name, File(handle, name=os.path.basename(name)))
        if saved != name:
            raise DomainError(f"The storage saved {name} as {saved}.")
        total += entry["size"]

    for head in json.loads((src / "audit_checkpoint.json").read_text(encoding="utf-8")).values():
        checkpoint_write({key: head[key] for key in ("chain_id", "sequence", "hash", "summary", "signature")})
    objects_path = src / "audit_checkpoint_objects.json"
    if objects_path.exists():  # backups made before the checkpoint objects have none
        try:
            checkpoint_objects_restore(json.loads(objects_path.read_text(encoding="utf-8")))
        except ValueError as exc:
            raise DomainError(f"audit_checkpoint_objects.json: {exc}") from exc
    checkpoint_publish(force=True)
    return BackupSummary(folder=src, media_files=len(manifest["media"]), media_bytes=total,
                         audit_sequence=manifest.get("audit_head", {}).get("sequence", 0))

