"""The client's address: the socket's, unless the operator says how many proxies in front to trust.

One rule for every per-client decision (the search limits, the admin lockout, who may read metrics):
X-Forwarded-For is anyone's to write, so it counts only for the hops the operator vouches for.
"""

from django.conf import settings


def client_ip(request):
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if settings.REVIMG_TRUSTED_PROXIES and hops:
        # Each trusted proxy appends the address it saw; the client is that many hops from the right.
        return hops[-min(settings.REVIMG_TRUSTED_PROXIES, len(hops))]
    return request.META.get("REMOTE_ADDR", "")
