"""The Django database backend that starts (or joins) revimg's embedded PostgreSQL on first connection."""

from django.db.backends.postgresql import base as postgresql

from revimg.embedded_pg import ensure_database, socket_dir_for


class DatabaseWrapper(postgresql.DatabaseWrapper):
    def get_connection_params(self):
        socket_dir = socket_dir_for(self.settings_dict["PGDATA"])
        self.settings_dict["HOST"] = socket_dir
        # Django creates test databases itself (connecting with NAME None); the main one is ours to create.
        name = self.settings_dict["NAME"]
        if name and not name.startswith("test_") and name != "postgres":
            ensure_database(socket_dir, self.settings_dict["USER"], name)
        return super().get_connection_params()
