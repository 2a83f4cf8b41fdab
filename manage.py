#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.core.management import execute_from_command_line

    if len(sys.argv) > 1 and sys.argv[1] == "runserver":  # requests get their own scope (middleware)
        execute_from_command_line(sys.argv)
        return
    # Administrative commands (migrate, verify_audit, backup, ...) work across every center under
    # PostgreSQL row-level security; web and worker processes never start this way.
    import django

    django.setup()
    from portal.centers.rls import system_scope

    with system_scope(f"manage.py {' '.join(sys.argv[1:2])}"):
        execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
