from django.conf import settings
from rest_framework.throttling import AnonRateThrottle


class AnonSearchThrottle(AnonRateThrottle):
    """Searches per client address for anonymous users, at settings.ANON_SEARCH_RATE (None: no limit).

    Counts live in Django's default cache: give several processes a shared cache to share the limit.
    """

    scope = "anon_search"

    def get_rate(self):
        return settings.ANON_SEARCH_RATE
