from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from revimg import embedded_pg


class Command(BaseCommand):
    help = (
        "Start, stop or show revimg's embedded PostgreSQL (used when DATABASE_URL is unset). It also starts by "
        "itself: with the app server (gunicorn), which keeps it running, or with any command, for as long as "
        "it runs. `start` leaves it running until `stop`, and prints the DATABASE_URL for other machines when "
        "REVIMG_EMBEDDED_PG_LISTEN is set."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["start", "stop", "status"])
        parser.add_argument(
            "--show-password", action="store_true", help="start: print the password in the DATABASE_URL"
        )

    def handle(self, action, show_password=False, **options):
        database = settings.DATABASES["default"]
        if database["ENGINE"] != "revimg.embedded_pg":
            raise CommandError(
                "DATABASE_URL is set: this installation uses that database, not an embedded one."
            )
        pgdata = database["PGDATA"]
        if action == "start":
            self._start(database, show_password)
        elif action == "stop":
            stopped = embedded_pg.stop(pgdata)
            self.stdout.write("stopped" if stopped else f"not running ({pgdata})")
        else:
            self.stdout.write(self._status(pgdata))

    def _status(self, pgdata):
        pid = embedded_pg.running_pid(pgdata)
        if pid is None:
            return f"not running ({pgdata})"
        hostname, port = embedded_pg.listening(pgdata)
        return f"running, pid {pid}, " + (
            f"listening on {hostname}:{port}" if hostname else "unix socket only"
        )

    def _start(self, database, show_password):
        network = database["NETWORK"]
        embedded_pg.keep_running(database["PGDATA"])
        try:
            embedded_pg.start_for_server(database["PGDATA"], database["USER"], database["NAME"], network)
        except Exception as error:
            raise CommandError(f"the embedded PostgreSQL did not start: {error}") from error
        self.stdout.write(f"running, pid {embedded_pg.running_pid(database['PGDATA'])}")
        wanted = (network.listen[0], network.port) if network.listen else ("", None)
        hostname, port = embedded_pg.listening(database["PGDATA"])
        if (hostname, port if network.listen else None) != wanted:
            self.stderr.write(
                "It was already running with other network settings: `embedded_postgres stop`, then start, "
                "applies the current ones."
            )
        if network.listen:
            self.stdout.write(f"DATABASE_URL={network.database_url(database['NAME'], show_password)}")
        else:
            self.stdout.write("unix socket only: set REVIMG_EMBEDDED_PG_LISTEN for other machines")
