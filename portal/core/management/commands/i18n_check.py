"""``manage.py i18n_check``: list unmarked strings and the state of the zh_Hans catalogs.

The translation workflow (also in README):
1. ``manage.py i18n_check --all``   — every unmarked string, file:line (mark them).
2. ``manage.py makemessages -l zh_Hans --no-obsolete`` and
   ``manage.py makemessages -d djangojs -l zh_Hans --no-obsolete --ignore 'var/*'``
3. translate the new msgids in ``locale/zh_Hans/LC_MESSAGES/*.po`` (clinical terms: docs in the .po header)
4. ``manage.py compilemessages -l zh_Hans`` (needs GNU gettext's msgfmt) and commit the .po and .mo
5. ``manage.py i18n_check`` exits non-zero while anything is unmarked, untranslated or fuzzy.
"""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.core.i18n_catalogs import catalog_problems, catalog_sizes
from portal.core.i18n_check import PENDING_SECOND_PASS, project_unmarked


class Command(BaseCommand):
    help = "List strings not marked for translation and untranslated or fuzzy zh_Hans catalog entries."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true",
                            help="include the files pending the second pass: " + ", ".join(sorted(PENDING_SECOND_PASS)))

    def handle(self, *args, **options):
        unmarked = project_unmarked(settings.BASE_DIR, include_pending=options["all"])
        for item in unmarked:
            self.stdout.write(f"unmarked  {item}")
        problems = catalog_problems(settings.BASE_DIR)
        for problem in problems:
            self.stdout.write(f"catalog   {problem}")
        for domain, (total, translated) in catalog_sizes(settings.BASE_DIR).items():
            self.stdout.write(f"zh_Hans {domain}: {translated}/{total} msgids translated")
        if unmarked or problems:
            raise CommandError(f"{len(unmarked)} unmarked strings, {len(problems)} catalog problems")
