"""`manage.py runserver` that starts while the database is unreachable.

Django's own runserver first checks for unapplied migrations and dies with a traceback when it
cannot connect. This one says so in one line and serves anyway: /health/ready answers 503 naming
the database until it is reachable, and recovers by itself when it is.
"""

from django.core.management.commands.runserver import Command as RunserverCommand
from django.db import OperationalError

from ...settings import database_error_line


class Command(RunserverCommand):
    def check_migrations(self) -> None:
        try:
            super().check_migrations()
        except OperationalError as error:
            self.stderr.write(
                f"{database_error_line(error)} (serving anyway: /health/ready answers 503 "
                "until the database is reachable)"
            )
