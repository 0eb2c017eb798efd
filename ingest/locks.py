"""Postgres session advisory locks: at most one holder of a key across every process on the database.

A lock rather than a status column: it goes with its connection, so a process killed while holding one
leaves nothing behind to expire.
"""

import logging
from contextlib import contextmanager

from django.db import DatabaseError, connection

log = logging.getLogger(__name__)


@contextmanager
def advisory_lock(space, key):
    """Hold the lock (space, key) for the block if nobody else does; yields whether it was got.

    Two int4 keys: callers pass keys below 2**31.
    """
    keys = [space, key]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", keys)
        got = cursor.fetchone()[0]
    try:
        yield got
    finally:
        if got:
            _release(keys)


def _release(keys):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", keys)
    except DatabaseError:
        log.warning("could not release the advisory lock %s; it goes with the connection", keys)
