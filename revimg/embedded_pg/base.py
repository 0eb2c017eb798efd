"""The Django database backend that starts (or joins) revimg's embedded PostgreSQL on first connection."""

from revimg.embedded_pg import SOCKET_ONLY, address_of, ensure_database
from revimg.postgres import base as postgres


class DatabaseWrapper(postgres.DatabaseWrapper):
    def get_connection_params(self):
        address = self._started_server()
        # Always the socket, even when the server also listens on TCP for other machines.
        self.settings_dict["HOST"], self.settings_dict["PORT"] = address
        # The main database is ours to create. Test databases are not: Django creates (and drops) them itself,
        # connecting with NAME None, and a process started by a test (REVIMG_DB_NAME=test_..., see settings)
        # joins pytest's, which must already exist; creating it here would race Django's own creation.
        name = self.settings_dict["NAME"]
        if name and not name.startswith("test_") and name != "postgres":
            ensure_database(address, self.settings_dict["USER"], name)
        return super().get_connection_params()

    def _started_server(self):
        """The Address of the running server, started if need be. A server that will not start is a
        database that cannot be reached (an OperationalError: the app answers 503 and the next connection
        tries again), whatever the reason: pg_ctl failing or timing out, an unusable folder."""
        try:
            return address_of(self.settings_dict["PGDATA"], self.settings_dict.get("NETWORK", SOCKET_ONLY))
        except Exception as error:
            raise self.Database.OperationalError(f"the embedded PostgreSQL did not start: {error}") from error
