"""The picture grid of one class in the admin: every picture as a thumbnail, several excluded in one go.

Reading it takes permission to view images; excluding or including takes permission to change them. Each
POST is answered with a redirect back to the grid, so reloading never repeats it.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from . import curation
from .models import CatalogImage


class GridForm(forms.Form):
    """One POST of the grid: "exclude" with the chosen pictures (and a reason), or "include" with one."""

    image = forms.TypedMultipleChoiceField(coerce=int, required=False)
    reason = forms.CharField(max_length=1000, required=False, strip=True)
    exclude = forms.BooleanField(required=False)
    include = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)

    def __init__(self, data, image_ids):
        super().__init__(data)
        choices = [(pk, pk) for pk in image_ids]
        self.fields["image"].choices = choices
        self.fields["include"].choices = choices

    def clean(self):
        data = super().clean()
        if data.get("include") is None and not data.get("exclude"):
            raise forms.ValidationError("Choose Exclude selected, or Include again on an excluded picture.")
        if data.get("exclude") and not data.get("image"):
            raise forms.ValidationError("No picture was selected: tick the ones to exclude first.")
        return data


def picture_grid(request, wikidata_class, admin_context):
    if not request.user.has_perm("catalog.view_catalogimage"):
        raise PermissionDenied
    images = list(wikidata_class.images.defer("embedding").order_by("id"))
    may_change = request.user.has_perm("catalog.change_catalogimage")
    if request.method == "POST":
        if not may_change:
            raise PermissionDenied
        form = GridForm(request.POST, [image.pk for image in images])
        if form.is_valid():
            messages.success(request, apply(form.cleaned_data, wikidata_class, request.user))
            return HttpResponseRedirect(request.path)
        for error in form.non_field_errors() + form.errors.get("image", []) + form.errors.get("include", []):
            messages.error(request, error)
    context = {
        **admin_context,
        "title": f"Pictures of {wikidata_class.label}",
        "wikidata_class": wikidata_class,
        "images": images,
        "excluded": CatalogImage.Status.EXCLUDED,
        "may_change": may_change,
        "opts": wikidata_class._meta,
        "class_url": reverse("admin:catalog_wikidataclass_change", args=[wikidata_class.pk]),
    }
    return TemplateResponse(request, "admin/catalog/wikidataclass/pictures.html", context)


def apply(data, wikidata_class, user):
    """Carry out the grid's POST; returns the confirmation to show."""
    if data.get("include") is not None:
        curation.restore([data["include"]], user)
        return f"#{data['include']} is in search again."
    reason = data["reason"] or f"excluded from the picture grid of {wikidata_class.label}"
    count = curation.exclude(data["image"], reason, user)
    return f"Excluded {count} picture{'s' if count != 1 else ''} of {wikidata_class.label} from search."
