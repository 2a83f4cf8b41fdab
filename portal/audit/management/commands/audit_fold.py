"""``manage.py audit_fold``: chain the pending read events now (the beat task does it every few seconds)."""
from django.core.management.base import BaseCommand

from portal.audit.services import audit_pending_count, audit_pending_fold


class Command(BaseCommand):
    help = "Chain the pending read events into the audit trail (oldest first) and say how many."

    def handle(self, *args, **options):
        folded = audit_pending_fold()
        left, _oldest = audit_pending_count()
        self.stdout.write(self.style.SUCCESS(f"folded {folded} pending read event(s); {left} pending now"))
