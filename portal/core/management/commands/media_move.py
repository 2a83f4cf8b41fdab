"""Copy every media file between local disk (``MEDIA_ROOT``) and the configured S3 bucket.

``manage.py media_move --to s3`` before switching a deployment to S3 (then set AWS_STORAGE_BUCKET_NAME
everywhere); ``--to local`` the other way. Idempotent: files already there with the same sha256 are
skipped; every copy is verified by sha256. The source is not deleted.
"""
from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from portal.core.media import local_media_storage, media_copy_all, s3_media_storage


class Command(BaseCommand):
    help = "Copy all media between MEDIA_ROOT and the S3 bucket (idempotent, sha256-verified)."

    def add_arguments(self, parser):
        parser.add_argument("--to", choices=["s3", "local"], required=True, help="Where the media should be.")

    def handle(self, *args, to: str, verbosity: int = 1, **options):
        try:
            s3 = s3_media_storage()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        local = local_media_storage()
        source, target = (local, s3) if to == "s3" else (s3, local)

        def on_file(name: str, outcome: str) -> None:
            if verbosity >= 2 or outcome == "failed":
                self.stdout.write(f"{outcome:8} {name}")

        report = media_copy_all(source=source, target=target, on_file=on_file)
        self.stdout.write(f"media_move --to {to}: {report.copied} copied, {report.skipped} already there "
                          f"(same sha256), {len(report.failed)} failed")
        if report.failed:
            raise CommandError(f"{len(report.failed)} file(s) did not verify after the copy: "
                               + ", ".join(report.failed[:10]))
