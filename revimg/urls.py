from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("search.urls")),
    # Catalog images are public; Django serves them itself so the app runs with no other server.
    path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}),
]
