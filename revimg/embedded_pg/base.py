"""The Django database backend that starts (or joins) revimg's embedded PostgreSQL on first connection."""

from revimg.embedded_pg import ensure_database, socket_dir_for
from revimg.postgres import base as postgres


class DatabaseWrapper(postgres.DatabaseWrapper):
    def get_connection_params(self):
        socket_dir = socket_dir_for(self.settings_dict["PGDATA"])
        self.settings_dict["HOST"] = socket_dir
        # The main database is ours to create. Test databases are not: Django creates (and drops) them itself,
        # connecting with NAME None, and a process started by a test (REVIMG_DB_NAME=test_..., see settings)
        # joins pytest's, which must already exist; creating it here would race Django's own creation.
        name = self.settings_dict["NAME"]
        if name and not name.startswith("test_") and name != "postgres":
            ensure_database(socket_dir, self.settings_dict["USER"], name)
        return super().get_connection_params()
