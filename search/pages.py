"""The catalog's own pages, for browsing it: a picture, a class and its pictures, the list of classes.

They only read. What they show is what search may return (CatalogImage.objects.searchable() and the
classes holding such pictures, WikidataClass.objects.in_catalog()); anything else is a 404.
"""

from functools import wraps

from django.core.paginator import EmptyPage, Paginator
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from catalog.errors import Refusal
from catalog.models import CatalogImage, WikidataClass
from revimg.errorpages import error_response

from .inputs import positive_int

PICTURES_PER_PAGE = 48
CLASSES_PER_PAGE = 48
# Longer than any class label we hold, short enough that a pasted paragraph is refused in words.
MAX_FILTER_LENGTH = 100

# A grid cell needs only these to show a picture and link to its page (an ImageField reads its dimension
# fields as each row is loaded: deferred, they would cost a query a row).
THUMBNAIL_FIELDS = ("id", "file", "thumbnail", "width", "height", "wikidata_class_id")


def answering_refusals(view):
    """view, with a refusal of its input answered by the site's error page in the refusal's words."""

    @wraps(view)
    def answered(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except Refusal as exc:
            return error_response(request, exc.status, exc.code, exc.message)

    return answered


@require_safe
def image_page(request, image_id):
    images = CatalogImage.objects.searchable().select_related("wikidata_class").defer("embedding")
    image = get_object_or_404(images, pk=image_id)
    context = {"image": image, "wikidata_class": image.wikidata_class, "shown": image.file or image.thumbnail}
    return render(request, "search/image.html", context)


@require_safe
@answering_refusals
def class_page(request, class_id):
    wikidata_class = get_object_or_404(WikidataClass.objects.in_catalog(), pk=class_id)
    pictures = wikidata_class.images.searchable().only(*THUMBNAIL_FIELDS).order_by("id")
    page = page_of(request, pictures, PICTURES_PER_PAGE, count=wikidata_class.image_count)
    context = {"wikidata_class": wikidata_class, "page": page, "pager": pager_links(request, page)}
    return render(request, "search/class.html", context)


@require_safe
@answering_refusals
def class_list(request):
    query = filter_text(request.GET.get("q", ""))
    classes = WikidataClass.objects.in_catalog().with_cover().only("id", "label").alphabetical()
    if query:
        classes = classes.filter(label__icontains=query)
    page = page_of(request, classes, CLASSES_PER_PAGE)
    covers = CatalogImage.objects.only(*THUMBNAIL_FIELDS).in_bulk([c.cover_id for c in page])
    entries = [(wikidata_class, covers.get(wikidata_class.cover_id)) for wikidata_class in page]
    context = {"query": query, "page": page, "entries": entries, "pager": pager_links(request, page)}
    return render(request, "search/classes.html", context)


def filter_text(text):
    """The class filter as typed, without the spaces around it, or a Refusal saying what is wrong with it."""
    text = text.strip()
    if len(text) > MAX_FILTER_LENGTH:
        raise Refusal("filter_too_long", f"The filter is too long: type at most {MAX_FILTER_LENGTH} letters.")
    # PostgreSQL refuses a NUL in text outright; nothing else in a label is off limits.
    if "\x00" in text:
        raise Refusal("filter_invalid", "The filter holds a character no class name has.")
    return text


def page_of(request, objects, per_page, count=None):
    """The page of objects that ?page= asks for (the first without it): a 400 for anything but a whole
    number from 1, a 404 past the last page. count, when the caller knows it already, saves a query."""
    asked = request.GET.get("page", "1")
    number = positive_int(asked)
    if number is None:
        raise Refusal("invalid_page", "The page number must be a whole number from 1.")
    paginator = Paginator(objects, per_page)
    if count is not None:
        paginator.count = count  # a cached_property: set, it is never computed
    try:
        return paginator.page(number)
    except EmptyPage:
        raise Refusal("no_such_page", f"There is no page {number} here.", status=404) from None


def pager_links(request, page):
    """The addresses of the pages before and after page, keeping the rest of the query string (the filter)."""
    return {
        "previous": page.has_previous() and _with_page(request, page.previous_page_number()),
        "next": page.has_next() and _with_page(request, page.next_page_number()),
    }


def _with_page(request, number):
    query = request.GET.copy()
    query["page"] = number
    return f"?{query.urlencode()}"
