"""``manage.py verify_audit``: recompute the audit chain and compare it with the signed heads."""
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portal.audit.services import audit_pending_fold
from portal.audit.verification import audit_verify


class Command(BaseCommand):
    help = ("Verify the audit trail's HMAC chain against the chain head row and the checkpoint file outside "
            "the database (always); name any broken event. Reports the read events not chained yet (--fold chains "
            "them first).")

    def add_arguments(self, parser):
        parser.add_argument("--fold", action="store_true", help="Chain the pending read events first.")

    def handle(self, *args, **options):
        if options["fold"]:
            self.stdout.write(f"folded {audit_pending_fold()} pending read event(s)")
        result = audit_verify()
        if result.pending:
            age = (timezone.now() - result.pending_oldest).total_seconds()
            self.stdout.write(f"{result.pending} read event(s) pending, not chained yet (oldest {age:.0f} s ago): "
                              f"`manage.py audit_fold` or the beat task chains them")
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(f"FAIL {problem}")
            raise CommandError(f"audit chain verification failed: {len(result.problems)} problem(s) "
                               f"in {result.events} events")
        self.stdout.write(self.style.SUCCESS(f"audit chain OK: {result.events} events"))
