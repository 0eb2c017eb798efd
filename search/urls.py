from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from . import api, views

router = DefaultRouter()
router.register("classes", api.ClassViewSet, basename="class")
router.register("images", api.ImageViewSet, basename="image")

urlpatterns = [
    path("", views.index, name="index"),
    path("api/search/", api.SearchView.as_view(), name="api-search"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file of its own (?script): no inline script,
    # so the page runs under our Content-Security-Policy.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include(router.urls)),
]
