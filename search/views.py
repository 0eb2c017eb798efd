"""The public page: a form, the verdict and a grid of the closest images.

Every answer has an address that can be reloaded and shared: /?url=<address>, /?similar=<id>, and for an
uploaded picture /?upload=<token> (search.shared), each with an optional &box=left,top,right,bottom to
search a part of the picture (search.inputs.parse_box). A POST (the form) answers 303 with that address.
The token is in the query string, never the path, so the access log (gunicorn.conf.py) never sees it.
"""

import base64
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from catalog.errors import Refusal
from catalog.models import CatalogImage
from catalog.store import thumbnail_bytes
from revimg.errorpages import with_retry_after

from . import searchlog, service, shared
from .inputs import QueryError, cropped, image_from_catalog, parse_box, positive_int, query_image
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
    params = request.POST if request.method == "POST" else request.GET
    typed_url = params.get("url", "")
    try:
        if request.method == "POST":
            return _posted(request, typed_url.strip())
        found = {}
        search = _search_asked(request.GET)
        if search is not None:
            throttle_class, run = search
            _throttle(request, throttle_class)
            found = run()
    except Refusal as exc:
        return unlisted(request, refused(request, exc, typed_url))
    return unlisted(
        request, render(request, "search/index.html", {**_page_context(request, typed_url), **found})
    )


def refused(request, exc, typed_url=""):
    """The search page again with the refusal's notice (and the address that was typed, to correct it)."""
    context = {**_page_context(request, typed_url), "error": PAGE_MESSAGES.get(exc.code, exc.message)}
    return with_retry_after(render(request, "search/index.html", context, status=exc.status), exc.retry_after)


# revimg.bodylimit refuses a body too large to read before the view runs, and answers with this.
index.show_refusal = refused


def unlisted(request, response):
    """An upload's answer is for whoever has the link: search engines are asked not to keep it."""
    if _is_unlisted(request):
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _is_unlisted(request):
    return "upload" in request.GET


def _page_context(request, typed_url=""):
    return {
        "max_upload_mb": settings.REVIMG_MAX_UPLOAD_MB,
        "typed_url": typed_url,
        "noindex": _is_unlisted(request),
    }


def page_address(**params):
    return f"{reverse('index')}?{urlencode(params)}"


def _posted(request, url):
    """The form: an address alone goes to its GET address; an upload is searched, kept, and linked to."""
    upload = request.FILES.get("image")
    if url and upload is None:
        return HttpResponseRedirect(page_address(url=url), status=303)
    _throttle(request, AnonSearchThrottle)
    with searchlog.reported(searchlog.query_kind(url), PAGE_K) as report:
        image = query_image(upload=upload, url=url)
        report.result = service.search_image(image, PAGE_K)
    token = shared.keep(image, report.result.vector)
    return HttpResponseRedirect(page_address(upload=token), status=303)


def _search_asked(params):
    """(the throttle it counts against, a callable that runs it and gives the page's context) for the
    search params ask for, or None. A bad box is refused here, before anything is counted or fetched."""
    box = parse_box(params["box"]) if params.get("box") else None
    # "More like this" and a kept upload's reload run no model: the larger budget, as in the API.
    cheap = AnonSimilarThrottle if box is None else AnonSearchThrottle
    if params.get("upload"):
        return cheap, lambda: _shared_search(params["upload"], box)
    if params.get("url", "").strip():
        return AnonSearchThrottle, lambda: _url_search(params["url"].strip(), box)
    if params.get("similar"):
        return cheap, lambda: _similar_search(params["similar"], box)
    return None


def _shared_search(token, box):
    with searchlog.reported("shared", PAGE_K) as report:
        kept = shared.find(token)
        if box is None and kept.model == service.model_label():
            report.result = service.search_vector(kept.embedding, PAGE_K)
        else:  # a part of the picture, or a vector of another model than today's: the model runs again
            report.result = service.search_image(_part(shared.picture_of(kept), box), PAGE_K)
    preview = _data_url(bytes(kept.thumbnail))
    return _answer(report.result, preview, box, ("upload", kept.token))


def _url_search(url, box):
    with searchlog.reported("url", PAGE_K) as report:
        image = query_image(url=url)
        report.result = service.search_image(_part(image, box), PAGE_K)
    return _answer(report.result, _data_url(thumbnail_bytes(image)), box, ("url", url))


def _similar_search(image_id, box):
    with searchlog.reported("similar", PAGE_K) as report:
        try:
            if box is None:
                result = service.search_similar(_catalog_id(image_id), PAGE_K)
            else:
                catalog_image = CatalogImage.objects.searchable().get(pk=_catalog_id(image_id))
                result = service.search_image(cropped(image_from_catalog(catalog_image), box), PAGE_K)
                result.query_image = catalog_image
        except CatalogImage.DoesNotExist:
            raise _not_in_catalog() from None
        report.result = result
    return _answer(result, _thumbnail_url(result.query_image), box, ("similar", result.query_image.pk))


def _catalog_id(text):
    image_id = positive_int(text)
    if image_id is None:
        raise _not_in_catalog()
    return image_id


def _not_in_catalog():
    return QueryError("not_found", "That picture is not in the catalog.", status=404)


def _answer(result, preview, box, query):
    """The page's context for an answer: the query picture shown back, the box on it, and what the region
    tool's form sends to search a part of the same picture."""
    name, value = query
    return {
        "result": result,
        "query_preview": preview,
        "box": box,
        "region_query": {"name": name, "value": value},
    }


def _part(image, box):
    return image if box is None else cropped(image, box)


def _data_url(jpeg):
    # The query is shown back inline: it has no address of its own, kept or not.
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _thumbnail_url(image):
    return (image.thumbnail or image.file).url


def _throttle(request, throttle_class):
    throttle = throttle_class()
    if not throttle.allow_request(request, None):
        raise QueryError("throttled", "Too many searches.", status=429)
