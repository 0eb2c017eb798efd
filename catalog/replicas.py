"""The one rule of where search reads: on a read replica when there is one that answers, else the primary.

Replicas (REVIMG_DATABASE_REPLICA_URLS, aliases replica_1, replica_2, ...) take the nearest-neighbour
queries of search and "more like this", the heaviest reads; everything else (writes, curation, ingest,
statistics upserts, logs, sessions) stays on the primary (revimg.dbrouter). A user is never failed by a
replica: one that cannot be reached is rested for RETRY_AFTER seconds and the primary answers meanwhile;
a row it does not have yet (replication lag: an image added a moment ago) is read on the primary.
"""

import contextlib
import logging
import random
import time

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)

# Seconds a replica that failed is left alone: every search would otherwise wait for it to fail again.
RETRY_AFTER = 30.0
_resting_until = {}


def search_read(read):
    """read(using): the reads of one search, all on the database alias using; its answer."""
    replica = _answering_replica()
    if replica is not None:
        try:
            return read(replica)
        except ObjectDoesNotExist:
            logger.info("replica %s lacks a row the primary may have: reading it there", replica)
        except (OperationalError, InterfaceError):
            logger.warning("replica %s failed: searching on the primary", replica, exc_info=True)
            _rest(replica)
    return read(DEFAULT_DB_ALIAS)


def replicas():
    return list(settings.REVIMG_SEARCH_REPLICAS)


def _answering_replica():
    now = time.monotonic()
    candidates = [alias for alias in replicas() if _resting_until.get(alias, 0) <= now]
    return random.choice(candidates) if candidates else None


def _rest(alias):
    _resting_until[alias] = time.monotonic() + RETRY_AFTER
    # Whatever state the failure left the connection in, the next search after the rest starts afresh.
    with contextlib.suppress(Exception):
        connections[alias].close()
