"""{% catalog_summary %}: what the catalog holds, in a sentence for the search page's home."""

from django import template
from django.db import DatabaseError, InterfaceError
from django.db.models import Count, Sum
from django.db.models.functions import Lower

from catalog.models import WikidataClass

register = template.Library()

# Enough to give an idea of what can be found; the list of classes has the rest.
EXAMPLES = 3


@register.inclusion_tag("search/catalog_summary.html")
def catalog_summary():
    classes = WikidataClass.objects.in_catalog()
    try:
        totals = classes.aggregate(pictures=Sum("image_count"), classes=Count("id"))
    except (DatabaseError, InterfaceError):
        # The search form still shows while the database is away; only this sentence is left out.
        return {"unavailable": True}
    # The best-stocked classes: those a first search most likely finds.
    examples = classes.order_by("-image_count", Lower("label"), "id").values_list("label", flat=True)[
        :EXAMPLES
    ]
    return {"pictures": totals["pictures"] or 0, "classes": totals["classes"], "examples": list(examples)}
