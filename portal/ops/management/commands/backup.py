"""``manage.py backup DEST``: database (pg_dump), media (through the storage API) and audit checkpoint into
the new folder DEST (see portal/ops/backup.py)."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal.core.errors import DomainError
from portal.ops.backup import backup_create


class Command(BaseCommand):
    help = "Back up the database, the media and the audit checkpoint into a new folder."

    def add_arguments(self, parser) -> None:
        parser.add_argument("dest", type=Path)

    def handle(self, *args, dest: Path, **options) -> None:
        try:
            summary = backup_create(dest=dest)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"backup in {summary.folder}: {summary.media_files} media files ({summary.media_bytes} bytes), "
            f"audit chain at #{summary.audit_sequence}"))
