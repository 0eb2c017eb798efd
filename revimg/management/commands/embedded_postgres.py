from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from revimg import embedded_pg


class Command(BaseCommand):
    help = (
        "Stop, or show, revimg's embedded PostgreSQL (used when DATABASE_URL is unset). It starts by itself: "
        "with the app server (gunicorn), which keeps it running, or with any command, for as long as it runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["stop", "status"])

    def handle(self, action, **options):
        database = settings.DATABASES["default"]
        if database["ENGINE"] != "revimg.embedded_pg":
            raise CommandError(
                "DATABASE_URL is set: this installation uses that database, not an embedded one."
            )
        pgdata = database["PGDATA"]
        if action == "stop":
            stopped = embedded_pg.stop(pgdata)
            self.stdout.write("stopped" if stopped else f"not running ({pgdata})")
        else:
            pid = embedded_pg.running_pid(pgdata)
            self.stdout.write(f"running, pid {pid}" if pid else f"not running ({pgdata})")
