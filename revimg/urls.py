from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve


def media(request, path):
    # MEDIA_ROOT read per request, not at import: tests point it at a folder of their own.
    return serve(request, path, document_root=settings.MEDIA_ROOT)


urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("search.urls")),
    # Catalog images are public; Django serves them itself so the app runs with no other server.
    path("media/<path:path>", media),
]
