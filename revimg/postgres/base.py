"""Django's PostgreSQL backend, with connections handed on from one request to the next within a process.

gunicorn's gevent workers run each request in a greenlet of its own, with connections of its own: a
connection kept for the next request (CONN_MAX_AGE) would be found by no later request, and a new one for
every search costs PostgreSQL about 10 ms of CPU, as much as the search's own query. So, when
REVIMG_DB_IDLE_CONNECTIONS is set (gunicorn.conf.py sets it), a connection closed in a clean state is kept
in a per-process list of idle ones instead, and the next request's connection is taken from it after a
one-line check (SELECT 1). A dead one (the database was restarted) is dropped and the next tried, then a
new connection made at once: no waiting, no backoff, so the first request after a restart is answered.
Each database alias has its own list: a read replica's connection must never serve the primary's queries.
"""

import threading
from collections import defaultdict, deque

from django.conf import settings
from django.db.backends.postgresql import base as postgresql
from psycopg import IsolationLevel
from psycopg.pq import TransactionStatus

_idle = defaultdict(deque)  # alias -> its idle connections
_idle_lock = threading.Lock()


def idle_count(alias="default"):
    return len(_idle[alias])


class DatabaseWrapper(postgresql.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        reused = _take_idle(self.alias) if settings.REVIMG_DB_IDLE_CONNECTIONS else None
        if reused is None:
            return super().get_new_connection(conn_params)
        # What Django's get_new_connection sets beside making the connection.
        level = self.settings_dict["OPTIONS"].get("isolation_level")
        self.isolation_level = IsolationLevel(level) if level is not None else IsolationLevel.READ_COMMITTED
        return reused

    def _close(self):
        if self._can_hand_on():
            with _idle_lock:
                if len(_idle[self.alias]) < settings.REVIMG_DB_IDLE_CONNECTIONS:
                    _idle[self.alias].append(self.connection)
                    return
        super()._close()

    def _can_hand_on(self):
        connection = self.connection
        return (
            settings.REVIMG_DB_IDLE_CONNECTIONS > 0
            and connection is not None
            and not connection.closed
            and not self.errors_occurred
            and connection.info.transaction_status == TransactionStatus.IDLE
        )


def _take_idle(alias):
    """An idle connection that still answers, or None; the dead ones are closed on the way."""
    while True:
        with _idle_lock:
            if not _idle[alias]:
                return None
            connection = _idle[alias].pop()  # the most recently used: the likeliest to be alive
        try:
            connection.execute("SELECT 1")
        except Exception:  # closed by the server, a restart, a network cut: whatever it is, drop it
            connection.close()
            continue
        return connection
