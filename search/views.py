"""The public page: a form, the verdict and a grid of the closest images."""

import base64

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from catalog.errors import Refusal
from catalog.models import CatalogImage
from catalog.store import thumbnail_bytes
from revimg.errorpages import with_retry_after

from . import searchlog, service
from .inputs import QueryError, query_image
from .throttles import AnonSearchThrottle, AnonSimilarThrottle

# More than the API's default: a page of thumbnails is cheap to look through.
PAGE_K = 20

# Where an API message is written for programs, the page says it for people.
PAGE_MESSAGES = {
    "not_an_image": "That file is not a picture we can read. Try a JPEG, PNG, WebP or GIF.",
    "truncated": "That picture seems damaged or cut short. Try saving it again, or use another one.",
    "url_forbidden": "That address leads into a private network, which we never fetch. "
    "Give the address of a picture on the public web.",
    "throttled": "You have searched a lot in a short time. Please wait a minute and try again.",
    "not_found": "That picture is no longer in the catalog.",
    "busy": "Many pictures are being searched right now. Please try again in a few seconds.",
}


@require_http_methods(["GET", "POST"])
def index(request):
    try:
        if request.method == "POST":
            found = _search_posted(request)
        elif request.GET.get("similar"):
            found = _search_similar(request, request.GET["similar"])
        else:
            found = {}
    except Refusal as exc:
        return refused(request, exc)
    return render(request, "search/index.html", {**_page_context(), **found})


def refused(request, exc):
    """The search page again with the refusal's notice, so another picture can be chosen at once."""
    context = {**_page_context(), "error": PAGE_MESSAGES.get(exc.code, exc.message)}
    return with_retry_after(render(request, "search/index.html", context, status=exc.status), exc.retry_after)


# revimg.bodylimit refuses a body too large to read before the view runs, and answers with this.
index.show_refusal = refused


def _page_context():
    return {"max_upload_mb": settings.REVIMG_MAX_UPLOAD_MB}


def _search_posted(request):
    _throttle(request, AnonSearchThrottle)
    upload, url = request.FILES.get("image"), request.POST.get("url", "").strip()
    with searchlog.reported(searchlog.query_kind(url), PAGE_K) as report:
        image = query_image(upload=upload, url=url)
        report.result = service.search_image(image, PAGE_K)
    # The query is shown back as an inline thumbnail: nothing of it is stored.
    preview = "data:image/jpeg;base64," + base64.b64encode(thumbnail_bytes(image)).decode("ascii")
    return {"result": report.result, "query_preview": preview}


def _search_similar(request, image_id):
    _throttle(request, AnonSimilarThrottle)
    with searchlog.reported("similar", PAGE_K) as report:
        try:
            result = report.result = service.search_similar(int(image_id), PAGE_K)
        except (ValueError, CatalogImage.DoesNotExist):
            raise QueryError("not_found", "That picture is not in the catalog.", status=404) from None
    return {"result": result, "query_preview": _thumbnail_url(result.query_image)}


def _thumbnail_url(image):
    return (image.thumbnail or image.file).url


def _throttle(request, throttle_class):
    throttle = throttle_class()
    if not throttle.allow_request(request, None):
        raise QueryError("throttled", "Too many searches.", status=429)
