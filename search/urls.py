from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from . import api, pages, views

router = DefaultRouter()
router.register("classes", api.ClassViewSet, basename="class")
router.register("images", api.ImageViewSet, basename="image")

urlpatterns = [
    path("", views.index, name="index"),
    path("images/<int:image_id>/", pages.image_page, name="image-page"),
    # Not "class-list": the API's router below names its list of classes so (and metrics label by name).
    path("classes/", pages.class_list, name="class-list-page"),
    path("classes/<int:class_id>/", pages.class_page, name="class-page"),
    path("api/search/", api.SearchView.as_view(), name="api-search"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file of its own (?script): no inline script,
    # so the page runs under our Content-Security-Policy.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include(router.urls)),
]
