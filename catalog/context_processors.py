"""What every page's template may show of the catalog."""

from django.utils.functional import SimpleLazyObject

from . import credits


def catalog_credits(request):
    """catalog_credits: the catalog's Credits (None while the database is away), read only by a page that
    shows them, so the admin and JSON answers never pay for them."""
    return {"catalog_credits": SimpleLazyObject(credits.current)}
