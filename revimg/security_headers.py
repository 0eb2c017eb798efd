"""Headers Django 5.2 does not set itself: a Content-Security-Policy and a Permissions-Policy, on every response.

Pictures in object storage are shown from the bucket's (or the CDN's) origin, which img-src then allows.

A view that sets either header itself keeps its own.
"""

from django.core.files.storage import storages

from catalog import objectstore

CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    # The search page shows the query as a data: URL (from the server) or a blob: URL (made by search.js).
    "img-src": ["'self'", "data:", "blob:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

# Pages whose inline styles are not ours to move into a stylesheet: Django's admin (a <style> in its change
# list, style attributes in our admin's thumbnails) and Swagger UI's page (a <style> in drf-spectacular's
# template). Inline styles cannot run code; inline scripts stay refused everywhere.
INLINE_STYLE_VIEWS = {"admin", "api-docs"}

PERMISSIONS_POLICY = {
    feature: "()"
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "serial",
        "usb",
    )
}

# The search page offers "take a photo on a phone" (a file input accepting images).
CAMERA_VIEWS = {"index"}


def serialize_csp(policy):
    return "; ".join(f"{directive} {' '.join(sources)}" for directive, sources in policy.items())


def serialize_permissions(policy):
    return ", ".join(f"{feature}={allowlist}" for feature, allowlist in policy.items())


def view_names(request):
    """The URL name and namespaces of the view that answered, if any (none for a 404 or a redirect)."""
    match = getattr(request, "resolver_match", None)
    return set() if match is None else {match.url_name, *match.namespaces}


def content_security_policy(views):
    policy = CONTENT_SECURITY_POLICY
    origin = media_origin()
    if origin:
        policy = {**policy, "img-src": [*policy["img-src"], origin]}
    if views & INLINE_STYLE_VIEWS:
        policy = {**policy, "style-src": [*policy["style-src"], "'unsafe-inline'"]}
    return policy


def media_origin():
    """The origin pictures come from when they live in object storage (their URLs point there), else None."""
    storage = storages["default"]
    return objectstore.url_origin(storage) if objectstore.is_object_storage(storage) else None


def permissions_policy(views):
    if views & CAMERA_VIEWS:
        return {**PERMISSIONS_POLICY, "camera": "(self)"}
    return PERMISSIONS_POLICY


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        views = view_names(request)
        response.headers.setdefault("Content-Security-Policy", serialize_csp(content_security_policy(views)))
        response.headers.setdefault("Permissions-Policy", serialize_permissions(permissions_policy(views)))
        return response
