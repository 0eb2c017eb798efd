"""The JSON API (Django REST framework): search, "more like this", and the catalog's classes and images."""

import re
from collections.abc import Mapping

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from catalog.errors import Refusal
from catalog.models import CatalogImage, WikidataClass
from revimg.errorpages import error_body, with_retry_after

from . import searchlog, service
from .inputs import QueryError, cropped, k_in, parse_box, positive_int, query_image
from .serializers import (
    ClassSerializer,
    ErrorSerializer,
    ImageSerializer,
    SearchResultSerializer,
    SearchUploadSerializer,
    SearchUrlSerializer,
)
from .throttles import AnonSearchThrottle, AnonSimilarThrottle


def error(description):
    return OpenApiResponse(ErrorSerializer, description=description)


# What each error answer means where it can happen; every one is {"error": {"code", "message"}}.
UNAVAILABLE = {503: error("The catalog is unreachable for a moment; see Retry-After")}
# Searches by picture also answer 503 when every decode slot stays taken (search/decoding.py).
BUSY_OR_UNAVAILABLE = {
    503: error("The catalog is unreachable, or too many pictures are being read at once; see Retry-After")
}
THROTTLED = {429: error("Too many searches; see Retry-After")}
PICTURE_ERRORS = {
    400: error("Not a picture, damaged, a refused address, k out of range, or a bad box"),
    413: error("Larger than REVIMG_MAX_UPLOAD_MB"),
    415: error("A type we do not read (SVG, PDF, HEIC...)"),
}
NOT_FOUND = {404: error("No such id")}
PAST_THE_LAST_PAGE = {404: error("page is past the last page")}
SIMILAR_ERRORS = {
    400: error(f"k is not a whole number from 1 to {service.MAX_K}"),
    404: error("No searchable catalog image has this id"),
}


def id_parameter(of_what):
    return OpenApiParameter(
        "id", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH, description=f"The id of the {of_what}"
    )


K_PARAMETER = OpenApiParameter(
    "k",
    {"type": "integer", "minimum": 1, "maximum": service.MAX_K},
    description=f"How many images, 1 to {service.MAX_K}; leave it out for {service.DEFAULT_K}",
)
CLASS_PARAMETER = OpenApiParameter(
    "class", {"type": "integer", "minimum": 1}, description="Only images of this class id"
)
QID_PATTERN = r"^Q[1-9][0-9]*$"
QID_PARAMETER = OpenApiParameter(
    "qid", {"type": "string", "pattern": QID_PATTERN}, description="Only the class with this QID"
)


def exception_handler(exc, context):
    """Every error the API answers has one shape: {"error": {"code": ..., "message": ...}}."""
    if isinstance(exc, Refusal):
        return with_retry_after(
            Response(error_body(exc.code, exc.message), status=exc.status), exc.retry_after
        )
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
    """Search the catalog with a picture: upload it as `image`, or give its address as `url`; `box` searches
    a part of it."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]
    throttle_classes = [AnonSearchThrottle]

    @extend_schema(
        request={"multipart/form-data": SearchUploadSerializer, "application/json": SearchUrlSerializer},
        responses={200: SearchResultSerializer, **PICTURE_ERRORS, **THROTTLED, **BUSY_OR_UNAVAILABLE},
    )
    def post(self, request):
        data = request.data
        posted_url = data.get("url") if isinstance(data, Mapping) else None
        with searchlog.reported(searchlog.query_kind(posted_url)) as report:
            if not isinstance(data, Mapping):
                raise QueryError("invalid_body", 'Send a JSON object such as {"url": "https://..."}.')
            # k may also come in the query string, as on "more like this".
            report.k = k = k_in(data if "k" in data else request.query_params)
            box = _box_field(data)
            image = query_image(upload=_uploaded_file(request), url=_url_field(data))
            report.result = service.search_image(image if box is None else cropped(image, box), k)
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
    # As with k: a field that is sent has a value; an empty one is no address, and not "no url" either.
    if url is not None and not url.strip():
        raise QueryError("url_invalid", "url is empty: leave it out, or give the address of a picture.")
    return url


def _box_field(data):
    """The optional box (search.inputs.parse_box); like url, a box that is sent must be one."""
    return parse_box(data["box"]) if "box" in data else None


@extend_schema_view(
    list=extend_schema(
        parameters=[QID_PARAMETER],
        responses={
            200: ClassSerializer,
            400: error("page is not a whole number from 1, or qid no QID"),
            **PAST_THE_LAST_PAGE,
            **UNAVAILABLE,
        },
    ),
    retrieve=extend_schema(
        parameters=[id_parameter("class")], responses={200: ClassSerializer, **NOT_FOUND, **UNAVAILABLE}
    ),
)
class ClassViewSet(viewsets.ReadOnlyModelViewSet):
    """Wikidata classes in the catalog, with how many searchable images each has."""

    serializer_class = ClassSerializer
    # Any other id is no address of ours: 404 in the error shape (revimg.errorpages), as the schema says.
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        classes = WikidataClass.objects.with_image_counts().order_by("label", "id")
        if "qid" not in self.request.query_params:
            return classes
        qid = self.request.query_params["qid"]
        # Checked before the query: PostgreSQL refuses a NUL in text outright, which would be a 500.
        if not re.fullmatch(QID_PATTERN, qid):
            raise QueryError("invalid_qid", "qid must be a Wikidata item id such as Q146.")
        return classes.filter(qid=qid)


@extend_schema_view(
    list=extend_schema(
        parameters=[CLASS_PARAMETER],
        responses={
            200: ImageSerializer,
            400: error("class or page is not a whole number from 1"),
            **PAST_THE_LAST_PAGE,
            **UNAVAILABLE,
        },
    ),
    retrieve=extend_schema(
        parameters=[id_parameter("catalog image")],
        responses={200: ImageSerializer, **NOT_FOUND, **UNAVAILABLE},
    ),
)
class ImageViewSet(viewsets.ReadOnlyModelViewSet):
    """Catalog images (excluded ones are not shown), and "more like this" from any of them."""

    serializer_class = ImageSerializer
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        images = CatalogImage.objects.exclude(status=CatalogImage.Status.EXCLUDED)
        images = (
            images.select_related("wikidata_class").defer("embedding").order_by("wikidata_class__label", "id")
        )
        if "class" not in self.request.query_params:
            return images
        class_id = positive_int(self.request.query_params["class"])
        if class_id is None:
            raise QueryError("invalid_class", "class must be the numeric id of a class.")
        return images.filter(wikidata_class_id=class_id)

    @extend_schema(
        parameters=[id_parameter("catalog image"), K_PARAMETER],
        responses={200: SearchResultSerializer, **SIMILAR_ERRORS, **THROTTLED, **UNAVAILABLE},
    )
    @action(detail=True, throttle_classes=[AnonSimilarThrottle])
    def similar(self, request, pk=None):
        """The images most like this one (itself left out), with the same verdict as a search."""
        with searchlog.reported("similar") as report:
            report.k = k = k_in(request.query_params)
            try:
                report.result = service.search_similar(int(pk), k)
            except CatalogImage.DoesNotExist:
                raise exceptions.NotFound("No searchable catalog image has this id.") from None
        return search_response(report.result, request)
