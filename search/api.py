"""The JSON API (Django REST framework): search, "more like this", and the catalog's classes and images."""

from collections.abc import Mapping

from django.db.models import Count
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from catalog.errors import Refusal
from catalog.models import CatalogImage, WikidataClass, searchable_q
from revimg.errorpages import error_body

from . import searchlog, service
from .inputs import QueryError, parse_k, query_image
from .serializers import (
    ClassSerializer,
    ErrorSerializer,
    ImageSerializer,
    SearchRequestSerializer,
    SearchResultSerializer,
)
from .throttles import AnonSearchThrottle, AnonSimilarThrottle

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Not a picture, damaged, or a refused address"),
    413: OpenApiResponse(ErrorSerializer, description="Larger than REVIMG_MAX_UPLOAD_MB"),
    415: OpenApiResponse(ErrorSerializer, description="A type we do not read (SVG, PDF, HEIC...)"),
    429: OpenApiResponse(ErrorSerializer, description="Too many searches; see Retry-After"),
    503: OpenApiResponse(
        ErrorSerializer, description="Too many pictures being read at once; see Retry-After"
    ),
}
K_PARAMETER = OpenApiParameter("k", int, description=f"How many images, 1 to {service.MAX_K} (default 10)")


def exception_handler(exc, context):
    """Every error the API answers has one shape: {"error": {"code": ..., "message": ...}}."""
    if isinstance(exc, Refusal):
        response = Response(error_body(exc.code, exc.message), status=exc.status)
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return response
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = error_body(*_describe(exc))
    return response


def _describe(exc):
    if isinstance(exc, exceptions.Throttled):
        return "throttled", f"Too many searches. Try again in {exc.wait or 1:.0f} seconds."
    if isinstance(exc, exceptions.ValidationError):
        return "invalid", _first_message(exc.detail)
    if isinstance(exc, exceptions.APIException):
        return str(exc.default_code), str(exc.detail)
    return "not_found", "Not found."  # Http404, turned into NotFound's response by DRF


def _first_message(detail):
    if isinstance(detail, Mapping):
        name, inner = next(iter(detail.items()))
        return f"{name}: {_first_message(inner)}"
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input."
    return str(detail)


def search_response(result, request):
    return Response(SearchResultSerializer(result, context={"request": request}).data)


class SearchView(APIView):
    """Search the catalog with a picture: upload it as `image`, or give its address as `url`."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]
    throttle_classes = [AnonSearchThrottle]

    @extend_schema(
        request={"multipart/form-data": SearchRequestSerializer, "application/json": SearchRequestSerializer},
        responses={200: SearchResultSerializer, **ERRORS},
    )
    def post(self, request):
        data = request.data
        posted_url = data.get("url") if isinstance(data, Mapping) else None
        with searchlog.reported(searchlog.query_kind(posted_url)) as report:
            if not isinstance(data, Mapping):
                raise QueryError("invalid_body", 'Send a JSON object such as {"url": "https://..."}.')
            report.k = k = parse_k(data.get("k", request.query_params.get("k")))
            image = query_image(upload=_uploaded_file(request), url=_url_field(data))
            report.result = service.search_image(image, k)
        return search_response(report.result, request)


def _uploaded_file(request):
    if "image" in request.FILES:
        return request.FILES["image"]
    if request.data.get("image") not in (None, ""):
        raise QueryError("invalid_image", "The image field must be a file, sent as multipart/form-data.")
    return None


def _url_field(data):
    url = data.get("url")
    if url is not None and not isinstance(url, str):
        raise QueryError("url_invalid", "url must be a string.")
    return url


class ClassViewSet(viewsets.ReadOnlyModelViewSet):
    """Wikidata classes in the catalog, with how many searchable images each has."""

    serializer_class = ClassSerializer

    def get_queryset(self):
        searchable = searchable_q("images__")
        classes = WikidataClass.objects.annotate(image_count=Count("images", filter=searchable)).order_by(
            "label", "id"
        )
        qid = self.request.query_params.get("qid")
        return classes.filter(qid=qid) if qid else classes

    @extend_schema(parameters=[OpenApiParameter("qid", str, description="Only the class with this QID")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class ImageViewSet(viewsets.ReadOnlyModelViewSet):
    """Catalog images (excluded ones are not shown), and "more like this" from any of them."""

    serializer_class = ImageSerializer

    def get_queryset(self):
        images = CatalogImage.objects.exclude(status=CatalogImage.Status.EXCLUDED)
        images = (
            images.select_related("wikidata_class").defer("embedding").order_by("wikidata_class__label", "id")
        )
        wikidata_class = self.request.query_params.get("class")
        if wikidata_class is None:
            return images
        if not wikidata_class.isdigit():
            raise QueryError("invalid_class", "class must be the numeric id of a class.")
        return images.filter(wikidata_class_id=int(wikidata_class))

    @extend_schema(
        parameters=[OpenApiParameter("class", OpenApiTypes.INT, description="Only images of this class id")]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(parameters=[K_PARAMETER], responses={200: SearchResultSerializer, **ERRORS})
    @action(detail=True, throttle_classes=[AnonSimilarThrottle])
    def similar(self, request, pk=None):
        """The images most like this one (itself left out), with the same verdict as a search."""
        with searchlog.reported("similar") as report:
            report.k = k = parse_k(request.query_params.get("k"))
            if not str(pk).isdigit():
                raise exceptions.NotFound()
            try:
                report.result = service.search_similar(int(pk), k)
            except CatalogImage.DoesNotExist:
                raise exceptions.NotFound("No searchable catalog image has this id.") from None
        return search_response(report.result, request)
