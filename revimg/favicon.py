"""/favicon.ico, which browsers ask for whatever a page links to: sent on to the pages' own SVG icon."""

from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static

ICON = "favicon.svg"  # also linked by templates/base.html


def favicon(request):
    return HttpResponsePermanentRedirect(static(ICON))
