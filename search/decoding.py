"""At most REVIMG_DECODE_CONCURRENCY query pictures decoded at once in one process, and a quick "busy"
rather than a queue when more arrive.

Decoding is where a small file can cost much memory (a one-colour PNG of 16 MP takes 56 KB to send and
64 MB to hold, more while it is turned upright); the bound makes a process's worst case a few decodes
rather than one per waiting request. Under gunicorn's gevent workers decodes never overlap (decoding
does not yield to other greenlets), so the bound bites in threaded servers (runserver, `make dev`); gevent
patches threading's semaphore into a greenlet-aware one, so it is right there too. Hold a slot for reading
the bytes at hand and decoding them, never while waiting on the network (a client sending, a URL
downloading).
"""

import functools
import math
import threading
from contextlib import contextmanager

from django.conf import settings
from django.dispatch import Signal

from catalog.errors import Refusal

# Sent inside the slot, just before the bytes are decoded: the one point where a test can hold a decode
# that is really running.
decode_started = Signal()


class Busy(Refusal):
    """Every decode slot stayed taken for as long as a request may wait for one."""

    def __init__(self, wait_seconds):
        super().__init__(
            "busy",
            "Too many pictures are being read right now. Please try again in a moment.",
            status=503,
            retry_after=max(1, math.ceil(wait_seconds)),
        )


@functools.cache
def _slots(concurrency):
    # One semaphore per configured size: a setting changed (in tests) gets its own, never a resized one.
    return threading.BoundedSemaphore(concurrency)


@contextmanager
def decode_slot():
    """Take one of the process's decode slots, waiting at most REVIMG_DECODE_WAIT_SECONDS; raises Busy."""
    slots = _slots(settings.REVIMG_DECODE_CONCURRENCY)
    if not slots.acquire(timeout=settings.REVIMG_DECODE_WAIT_SECONDS):
        raise Busy(settings.REVIMG_DECODE_WAIT_SECONDS)
    try:
        decode_started.send(sender=decode_slot)
        yield
    finally:
        slots.release()
