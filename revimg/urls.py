from django.contrib import admin
from django.urls import include, path

from revimg import health
from revimg.favicon import favicon
from revimg.media import media
from revimg.metrics import metrics_view

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Prometheus' scrape: a 404 unless REVIMG_METRICS_ALLOWED or REVIMG_METRICS_TOKEN lets the caller in.
    path("metrics", metrics_view, name="metrics"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("", include("search.urls")),
    # Catalog images are public; Django serves them itself so the app runs with no other server
    # (or hands them to one with X-Accel-Redirect, see revimg/media.py).
    path("media/<path:path>", media, name="media"),
]

# Failures outside the views' own refusals: JSON under /api/, a plain page elsewhere (revimg.errorpages).
handler400 = "revimg.errorpages.bad_request"
handler403 = "revimg.errorpages.permission_denied"
handler404 = "revimg.errorpages.page_not_found"
handler500 = "revimg.errorpages.server_error"
