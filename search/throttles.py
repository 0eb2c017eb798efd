"""Per-client search limits for anonymous users, counted in the cache every worker shares.

Counting is a sliding window estimated from two fixed ones (the current minute's count plus the last
minute's, weighted by how much of it still lies in the window), so that each request is a single atomic
increment in Redis or in revimg.cache: two workers counting at the same moment never lose a request, which
a read-then-write history (DRF's own throttles) can.
"""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from revimg.clientip import client_ip

SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate):
    """ "30/minute" -> (30, 60): requests allowed, window in seconds (the settings checked the form)."""
    count, period = rate.split("/")
    return int(count), SECONDS[period[0]]


class _SlidingWindowThrottle(BaseThrottle):
    scope = None

    def get_rate(self):
        raise NotImplementedError

    def allow_request(self, request, view):
        rate = self.get_rate()
        if rate is None or request.user.is_authenticated:
            return True
        self.limit, self.window = parse_rate(rate)
        now = time.time()
        index, elapsed = divmod(now, self.window)
        key = f"throttle:{self.scope}:{client_ip(request)}:"
        current_key = key + str(int(index))
        current = _count(current_key, timeout=2 * self.window)
        previous = cache.get(key + str(int(index) - 1), 0)
        if previous * (1 - elapsed / self.window) + current <= self.limit:
            return True
        # A refused request does not count against the client: only answered searches do.
        cache.decr(current_key)
        self._wait = _seconds_until_allowed(previous, current - 1, elapsed, self.window, self.limit)
        return False

    def wait(self):
        return self._wait


def _count(key, timeout):
    """Add one to key's count, atomically; the first request of a window creates it."""
    try:
        return cache.incr(key)
    except ValueError:
        if cache.add(key, 1, timeout=timeout):
            return 1
        return cache.incr(key)  # another worker created it first


def _seconds_until_allowed(previous, current, elapsed, window, limit):
    """When one more request fits: later in this window as the last one's weight fades, or in the next."""
    if current < limit and previous > 0:
        fraction = 1 - (limit - current - 1) / previous  # of this window, at which one more fits
        return max(1.0, (fraction - elapsed / window) * window)
    next_fraction = 1 - (limit - 1) / current if current > 0 else 0.0
    return max(1.0, window - elapsed + max(0.0, next_fraction) * window)


class AnonSearchThrottle(_SlidingWindowThrottle):
    """Searches with a picture (each one runs the model), at settings.REVIMG_ANON_SEARCH_RATE (None: no limit)."""

    scope = "anon_search"

    def get_rate(self):
        return settings.REVIMG_ANON_SEARCH_RATE


class AnonSimilarThrottle(_SlidingWindowThrottle):
    """ "More like this" (a stored vector, no model), at settings.REVIMG_ANON_SIMILAR_RATE (None: no limit)."""

    scope = "anon_similar"

    def get_rate(self):
        return settings.REVIMG_ANON_SIMILAR_RATE
