"""``manage.py restore SRC``: load a backup folder into an EMPTY database and storage, then run
``manage.py verify_audit`` (and ``manage.py db_app_role ROLE`` to grant the app role)."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal.core.errors import DomainError
from portal.ops.backup import backup_restore


class Command(BaseCommand):
    help = "Restore a backup folder into an empty database and storage."

    def add_arguments(self, parser) -> None:
        parser.add_argument("src", type=Path)

    def handle(self, *args, src: Path, **options) -> None:
        try:
            summary = backup_restore(src=src)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"restored {summary.folder}: {summary.media_files} media files, audit chain at #{summary.audit_sequence}; "
            "now run verify_audit"))
