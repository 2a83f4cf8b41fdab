"""``manage.py verify_audit``: recompute the audit chain and compare it with the signed heads."""
from django.core.management.base import BaseCommand, CommandError

from portal.audit.verification import audit_verify


class Command(BaseCommand):
    help = ("Verify the audit trail's HMAC chain against the chain head row and the checkpoint file outside "
            "the database (always); name any broken event.")

    def handle(self, *args, **options):
        result = audit_verify()
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(f"FAIL {problem}")
            raise CommandError(f"audit chain verification failed: {len(result.problems)} problem(s) "
                               f"in {result.events} events")
        self.stdout.write(self.style.SUCCESS(f"audit chain OK: {result.events} events"))
