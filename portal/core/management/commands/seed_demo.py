"""Seed a demo: one center, one user per role (printed passwords), and the demo data of each app.

Idempotent: passwords are generated once and kept in ``var/demo_credentials.json`` so that running it
again prints the same logins.
"""
from __future__ import annotations

import json
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from portal.accounts.selectors import OTP_REQUIRED_ROLES
from portal.centers.models import Center, Role
from portal.centers.services import center_create, membership_grant
from portal.core.demo import seed_demo_model_and_session, seed_demo_validation_study

DEMO_CENTER_CODE = "C01"
OTP_ROLES = (*OTP_REQUIRED_ROLES, None)  # None: the site auditor
DEMO_USERS = [
    ("uploader", Role.UPLOADER),
    ("reviewer", Role.REVIEWER),
    ("reviewer2", Role.REVIEWER),
    ("validator", Role.VALIDATOR),
    ("validator2", Role.VALIDATOR),
    ("stain_tech", Role.STAIN_TECHNICIAN),
    ("center_admin", Role.CENTER_ADMIN),
    ("auditor", None),
]


def _credentials() -> dict[str, str]:
    path = settings.VAR_DIR / "demo_credentials.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for username, _ in DEMO_USERS:
        if username not in stored:
            stored[username] = "demo-" + secrets.token_urlsafe(9)
            changed = True
    if changed:
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
    return stored


class Command(BaseCommand):
    help = ("Create the demo center, users, the demo model, a synthetic image session to review and a validation "
            "study open for scoring.")

    def add_arguments(self, parser):
        parser.add_argument("--no-images", action="store_true",
                            help="skip the demo model, the synthetic session and the validation study")

    def handle(self, *args, **options):
        passwords = _credentials()
        User = get_user_model()
        with transaction.atomic():
            center = Center.objects.filter(code=DEMO_CENTER_CODE).first() or center_create(
                code=DEMO_CENTER_CODE, name="Demo Fertility Clinic"
            )
            for username, role in DEMO_USERS:
                user, created = User.objects.get_or_create(username=username)
                if created or not user.check_password(passwords[username]):
                    user.set_password(passwords[username])
                user.is_auditor = role is None
                user.save()
                if role is not None:
                    membership_grant(user=user, center=center, role=role)
        extras = []
        if not options["no_images"]:
            extras = seed_demo_model_and_session(center=center)
            extras += seed_demo_validation_study(center=center)
        self.stdout.write(self.style.SUCCESS(f"Demo center {center.code} ready. Logins:"))
        for username, role in DEMO_USERS:
            label = Role(role).label if role else "Site auditor"
            second = "  [2FA: enrol an authenticator app at first login]" if role in OTP_ROLES else ""
            self.stdout.write(f"  {username:<13} {passwords[username]:<22} {label}{second}")
        self.stdout.write("Two-factor: center_admin, validators and auditor scan a QR code with any TOTP app "
                          "(or type the key shown) at first login; keep the backup codes shown once.")
        for line in extras:
            self.stdout.write(line)

