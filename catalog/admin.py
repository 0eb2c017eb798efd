"""The curation admin: classes, images and the suspects the machine found, fixed in a click or two.

List pages never load the 1280-float vectors (deferred) and fetch everything a row shows in the page's
one query (select_related and annotations), so a page costs the same with 10 rows or 100.
"""

from celery.result import EagerResult
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.admin.widgets import AdminURLFieldWidget
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import BooleanField, Count, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme

from . import classgrid, curation, tasks
from .models import CatalogImage, Suspect, SuspectSearch, WikidataClass, stale_q
from .weburl import WebURLValidator

THUMB_WIDTH = 96
LIST_THUMB_WIDTH = 64  # the image list's fixed thumbnail box: its rows fit a 1280 px screen
EXCLUDED = CatalogImage.Status.EXCLUDED

# Every admin page, the login included, reads these through admin.site.each_context.
admin.site.site_header = "revimg curation"
admin.site.site_title = "revimg curation"
admin.site.index_title = "Curate the catalog"
# The sidebar of every model took a quarter of a 1280 px screen from the lists; the breadcrumbs and the
# index page lead to the same places.
admin.site.enable_nav_sidebar = False


def thumbnail_tag(image, width=THUMB_WIDTH):
    if image is None or not image.thumbnail:
        return "—"
    return thumbnail_url_tag(image.thumbnail.url, width)


def thumbnail_url_tag(url, width=THUMB_WIDTH):
    # A box, not a width: tall pictures must not stretch the rows.
    return format_html(
        '<img src="{}" alt="" loading="lazy" style="max-width:{}px;max-height:{}px;border-radius:3px">',
        url,
        width,
        width,
    )


def open_suspect_score():
    """The highest open suspect score of the outer image, whichever suspect it is part of."""
    suspects = Suspect.objects.open().involving(OuterRef("pk"))
    return Subquery(suspects.order_by("-score").values("score")[:1])


class WebURLWidget(AdminURLFieldWidget):
    """The admin's URL input, whose "Currently:" link appears only for an http(s) address (catalog.weburl):
    Django's own would link ftp: too, and anything a stored row holds is not trusted."""

    def __init__(self, attrs=None):
        super().__init__(attrs, validator_class=WebURLValidator)


# A source address typed without a scheme is read as https (Django 6's default, taken now).
URL_FORM_FIELD = {"assume_scheme": "https", "widget": WebURLWidget}


def truncated(text):
    """Text cut short on one line by the stylesheet, whole in its tooltip."""
    return format_html('<span class="truncated" title="{}">{}</span>', text, text)


# -- filters --------------------------------------------------------------------------------------------------


class YesNoFilter(admin.SimpleListFilter):
    condition = None  # a Q object that means "yes"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(self.condition)
        if self.value() == "no":
            return queryset.exclude(self.condition)
        return queryset


class HasEmbeddingFilter(YesNoFilter):
    title = "has embedding"
    parameter_name = "embedded"
    condition = Q(embedding__isnull=False)


class StaleEmbeddingFilter(YesNoFilter):
    title = "stale embedding"
    parameter_name = "stale"
    condition = stale_q()


class SuspiciousFilter(admin.SimpleListFilter):
    title = "suspicious"
    parameter_name = "suspect"

    def lookups(self, request, model_admin):
        return (("any", "Any open suspicion"), *Suspect.Kind.choices, ("none", "None"))

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        suspects = Suspect.objects.open()
        if value in Suspect.Kind.values:
            suspects = suspects.filter(kind=value)
        involved = Q(pk__in=suspects.values("members"))
        return queryset.exclude(involved) if value == "none" else queryset.filter(involved)


class LicenseFilter(admin.SimpleListFilter):
    title = "licence"
    parameter_name = "licence"

    def lookups(self, request, model_admin):
        values = CatalogImage.objects.order_by("license").values_list("license", flat=True).distinct()
        return [(value or "-", value or "(none)") for value in values]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(license="" if value == "-" else value)


# -- classes ----------------------------------------------------------------------------------------------------


class CatalogImageInline(admin.TabularInline):
    model = CatalogImage
    fields = ("preview", "status", "status_reason", "origin", "license", "created_at")
    readonly_fields = ("preview", "origin", "license", "created_at")
    extra = 0
    can_delete = False
    show_change_link = True
    formfield_overrides = {
        models.TextField: {"widget": forms.Textarea(attrs={"rows": 1, "cols": 40})},
        models.URLField: URL_FORM_FIELD,
    }
    ordering = ("id",)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("embedding")

    def has_add_permission(self, request, obj=None):
        return False  # images arrive through import or crawl, with their files and vectors

    @admin.display(description="Image")
    def preview(self, image):
        return thumbnail_tag(image, 72)


@admin.register(WikidataClass)
class WikidataClassAdmin(admin.ModelAdmin):
    # What every class has (a picture, a count, where it comes from): classes imported from a folder have no
    # QID, description or main image, and columns of those alone read as rows of dashes.
    list_display = ("list_thumbnail", "name", "source", "pictures", "excluded_count")
    list_display_links = ("list_thumbnail", "name")
    search_fields = ("label", "=qid", "enwiki_title")
    ordering = ("label",)
    list_per_page = 50
    raw_id_fields = ("main_image",)
    readonly_fields = ("main_thumbnail", "picture_grid_link", "created_at", "updated_at")
    fields = (
        ("label", "qid"),
        "picture_grid_link",
        "description",
        "enwiki_title",
        "instance_count",
        ("main_image", "main_thumbnail"),
        ("created_at", "updated_at"),
    )
    inlines = [CatalogImageInline]

    def get_queryset(self, request):
        first_searchable = (
            CatalogImage.objects.searchable().filter(wikidata_class=OuterRef("pk")).order_by("id")
        )
        return (
            super()
            .get_queryset(request)
            .select_related("main_image")
            .defer("main_image__embedding")
            .annotate(
                n_images=Count("images", distinct=True),
                n_excluded=Count("images", filter=Q(images__status=EXCLUDED), distinct=True),
                first_thumbnail=Subquery(first_searchable.values("thumbnail")[:1]),
            )
        )

    def get_urls(self):
        grid = self.admin_site.admin_view(self.picture_grid_view)
        return [
            path("<int:pk>/pictures/", grid, name="catalog_wikidataclass_pictures"),
            *super().get_urls(),
        ]

    def picture_grid_view(self, request, pk):
        wikidata_class = get_object_or_404(WikidataClass, pk=pk)
        return classgrid.picture_grid(request, wikidata_class, self.admin_site.each_context(request))

    @admin.display(description="Picture")
    def list_thumbnail(self, obj):
        """The main image, else the class's first searchable picture: what the class looks like."""
        if obj.main_image and obj.main_image.thumbnail:
            return thumbnail_tag(obj.main_image, LIST_THUMB_WIDTH)
        if obj.first_thumbnail:
            return thumbnail_url_tag(
                CatalogImage.thumbnail.field.storage.url(obj.first_thumbnail), LIST_THUMB_WIDTH
            )
        return "no picture"

    @admin.display(description="Main image (preview)")
    def main_thumbnail(self, obj):
        return thumbnail_tag(obj.main_image, 72)

    @admin.display(description="From", ordering="qid")
    def source(self, obj):
        if obj.qid:
            return format_html('<a href="{}">{}</a>', obj.wikidata_url, obj.qid)
        return "local"

    @admin.display(description="Pictures", ordering="n_images")
    def pictures(self, obj):
        url = reverse("admin:catalog_wikidataclass_pictures", args=[obj.pk])
        return format_html('<a href="{}" title="All its pictures as a grid">{}</a>', url, obj.n_images)

    @admin.display(description="Pictures")
    def picture_grid_link(self, obj):
        if obj.pk is None:
            return "none yet"
        url = reverse("admin:catalog_wikidataclass_pictures", args=[obj.pk])
        return format_html('<a href="{}">All {} pictures as a grid</a>', url, obj.images.count())

    @admin.display(description="Excluded", ordering="n_excluded")
    def excluded_count(self, obj):
        return obj.n_excluded

    @admin.display(description="Class", ordering="label")
    def name(self, obj):
        """The label, with the description under it when the class has one (crawled ones do)."""
        if not obj.description:
            return obj.label
        return format_html(
            '{}<br><small class="truncated" title="{}">{}</small>',
            obj.label,
            obj.description,
            obj.description,
        )


# -- images -----------------------------------------------------------------------------------------------------


class ExcludeForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=1000,
        help_text="Shown in the image's history and kept with it, e.g. 'a map, not a photo'.",
    )


@admin.register(CatalogImage)
class CatalogImageAdmin(admin.ModelAdmin):
    # Few, narrow columns so the list fits a 1280 px screen beside its filters (origin and dates are on
    # each image's page and in the filters); long texts are cut short (catalog/static/catalog/admin.css).
    list_display = ("preview", "id", "class_label", "status", "vector_state", "licence", "suspicion")
    list_display_links = ("preview", "id")
    list_select_related = ("wikidata_class",)
    list_filter = (
        "status",
        "origin",
        LicenseFilter,
        HasEmbeddingFilter,
        StaleEmbeddingFilter,
        SuspiciousFilter,
    )
    search_fields = ("wikidata_class__label", "=wikidata_class__qid", "=sha256", "commons_file", "=phash")
    ordering = ("wikidata_class__label", "id")
    list_per_page = 50
    raw_id_fields = ("wikidata_class",)
    readonly_fields = (
        "large_preview",
        "sha256",
        "phash",
        "width",
        "height",
        "vector_summary",
        "open_suspicions",
        "recent_changes",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (
            None,
            {"fields": ("large_preview", "wikidata_class", ("status", "status_reason"), "open_suspicions")},
        ),
        (
            "Source and licence",
            {
                "fields": (
                    ("origin", "origin_detail"),
                    "source_url",
                    "commons_file",
                    ("license", "license_url"),
                    "artist",
                    "attribution",
                    "attribution_required",
                )
            },
        ),
        ("Content", {"fields": (("width", "height"), "sha256", "phash", "vector_summary")}),
        ("History", {"fields": ("recent_changes", ("created_at", "updated_at"))}),
    )
    formfield_overrides = {
        models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 60})},
        models.URLField: URL_FORM_FIELD,
    }
    # The file fields stay out of the form: replacing content is "re-fetch", which keeps hash and vector true.
    exclude = ("file", "thumbnail")
    actions = [
        "exclude_images",
        "restore_images",
        "flag_images",
        "reembed_images",
        "refetch_images",
        "make_main_image",
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .defer("embedding")
            .annotate(
                embedded=ExpressionWrapper(HasEmbeddingFilter.condition, output_field=BooleanField()),
                stale=ExpressionWrapper(stale_q(), output_field=BooleanField()),
                suspect_score=open_suspect_score(),
            )
        )

    def has_add_permission(self, request):
        return False  # images arrive through import_images or the crawl, with their files and vectors

    def get_ordering(self, request):
        # Filtering on suspicion means "show me the worst first".
        if request.GET.get(SuspiciousFilter.parameter_name, "none") != "none":
            return (F("suspect_score").desc(nulls_last=True), "id")
        return super().get_ordering(request)

    # -- columns and read-only fields

    @admin.display(description="Image")
    def preview(self, image):
        return thumbnail_tag(image, LIST_THUMB_WIDTH)

    @admin.display(description="Class", ordering="wikidata_class__label")
    def class_label(self, image):
        return truncated(image.wikidata_class.label)

    @admin.display(description="Licence", ordering="license")
    def licence(self, image):
        return truncated(image.license) if image.license else ""

    @admin.display(description="Image")
    def large_preview(self, image):
        if not image.file:
            return "—"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>', image.file.url, thumbnail_tag(image, 320)
        )

    @admin.display(description="Vector", ordering="stale")
    def vector_state(self, image):
        if not image.embedded:
            return "none"
        return "stale" if image.stale else "current"

    @admin.display(description="Suspicion", ordering=F("suspect_score").desc(nulls_last=True))
    def suspicion(self, image):
        return "" if image.suspect_score is None else f"{image.suspect_score:.2f}"

    @admin.display(description="Embedding")
    def vector_summary(self, image):
        if not image.embedded:
            return "none yet"
        state = "stale: re-embed it" if image.stale else "current"
        return (
            f"{image.embedding_model} {image.embedding_version}, {image.embedded_at:%Y-%m-%d %H:%M} ({state})"
        )

    @admin.display(description="Open suspicions")
    def open_suspicions(self, image):
        rows = Suspect.objects.open().involving(image)
        if not rows:
            return "none"
        return format_html_join(
            "",
            '<p><a href="{}">{} {}</a>: {}</p>',
            (
                (
                    reverse("admin:catalog_suspect_changelist") + f"?id={s.pk}",
                    s.get_kind_display(),
                    f"{s.score:.2f}",
                    s.reason,
                )
                for s in rows
            ),
        )

    @admin.display(description="Recent changes")
    def recent_changes(self, image):
        if image.pk is None:
            return "—"
        entries = LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(CatalogImage), object_id=str(image.pk)
        ).select_related("user")[:10]
        if not entries:
            return "none"
        return format_html_join(
            "",
            "<p>{} {}: {}</p>",
            ((f"{e.action_time:%Y-%m-%d %H:%M}", e.user, e.get_change_message()) for e in entries),
        )

    def save_model(self, request, obj, form, change):
        # A status changed by hand records who and why, like the actions do.
        if change and "status" in form.changed_data and not obj.status_reason:
            obj.status_reason = f"set to {obj.get_status_display().lower()} by {request.user}"
        super().save_model(request, obj, form, change)

    # -- actions

    @admin.action(description="Exclude from search (asks for a reason)", permissions=["change"])
    def exclude_images(self, request, queryset):
        form = ExcludeForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            count = curation.exclude(
                queryset.values_list("pk", flat=True), form.cleaned_data["reason"], request.user
            )
            self.message_user(request, f"Excluded {count} image(s); they no longer appear in search.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Exclude images from search",
            "form": form,
            "images": queryset.defer("embedding").select_related("wikidata_class")[:200],
            "count": queryset.count(),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/catalog/exclude_images.html", context)

    @admin.action(description="Restore to search", permissions=["change"])
    def restore_images(self, request, queryset):
        count = curation.restore(queryset.values_list("pk", flat=True), request.user)
        self.message_user(request, f"Restored {count} image(s) to search.")

    @admin.action(description="Flag for review", permissions=["change"])
    def flag_images(self, request, queryset):
        count = curation.flag(
            queryset.values_list("pk", flat=True), "flagged from the image list", request.user
        )
        self.message_user(request, f"Flagged {count} image(s) for review.")

    @admin.action(description="Re-embed with the current model", permissions=["change"])
    def reembed_images(self, request, queryset):
        self._queue(request, queryset, tasks.reembed_images, "Re-embed requested", "Re-embedding")

    @admin.action(description="Re-fetch from the source URL", permissions=["change"])
    def refetch_images(self, request, queryset):
        self._queue(request, queryset, tasks.refetch_images, "Re-fetch requested", "Re-fetching")

    def _queue(self, request, queryset, task, history, doing):
        """Hand the images to a task (a worker, or this process without a broker), noted in their History."""
        ids = list(queryset.values_list("pk", flat=True))
        result = task.delay(ids)
        curation.record(request.user, list(queryset.defer("embedding")), history)
        self.message_user(request, _task_message(f"{doing} {len(ids)} image(s)", result))

    @admin.action(description="Make it its class's main image", permissions=["change"])
    def make_main_image(self, request, queryset):
        picks = list(queryset.values_list("pk", "wikidata_class_id"))
        if len({class_id for _, class_id in picks}) != len(picks):
            self.message_user(request, "Choose at most one image per class.", messages.ERROR)
            return
        labels = [curation.make_main_image(pk, request.user).label for pk, _ in picks]
        self.message_user(request, f"Main image set for {', '.join(labels)}.")


def _task_message(what, result):
    """Eager runs (no broker) have their outcome at once; queued ones say so (there may be no result
    backend to ask)."""
    if isinstance(result, EagerResult):
        return f"{what}: {result.get()}."
    return f"{what}: queued as task {result.id}."


# -- suspects ---------------------------------------------------------------------------------------------------


class OpenFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("open", "Open"), ("dismissed", "Dismissed"), ("resolved", "Resolved (pictures excluded)"))

    def queryset(self, request, queryset):
        value = self.value() or "open"
        if value == "open":
            return queryset.filter(pk__in=Suspect.objects.open().values("pk"))
        if value == "dismissed":
            return queryset.filter(dismissed_at__isnull=False)
        return queryset.filter(dismissed_at__isnull=True).exclude(pk__in=Suspect.objects.open().values("pk"))

    def choices(self, changelist):
        # "Open" is the default, so the list shows work to do; there is no "All".
        for lookup, title in self.lookup_choices:
            yield {
                "selected": (self.value() or "open") == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


@admin.register(Suspect)
class SuspectAdmin(admin.ModelAdmin):
    list_display = ("score_display", "kind", "pictures", "why", "resolve")
    list_display_links = None
    list_filter = ("kind", OpenFilter)
    list_select_related = ("image__wikidata_class", "suggested_class")
    search_fields = ("image__wikidata_class__label", "=image__wikidata_class__qid", "=members__id")
    ordering = ("-score", "id")
    list_per_page = 30
    actions = ["dismiss"]

    def get_queryset(self, request):
        members = CatalogImage.objects.defer("embedding").select_related("wikidata_class").order_by("id")
        return (
            super()
            .get_queryset(request)
            .defer("image__embedding")
            .prefetch_related(models.Prefetch("members", queryset=members))
        )

    def has_add_permission(self, request):
        return False  # suspects are computed (manage.py find_suspects), not typed in

    def has_change_permission(self, request, obj=None):
        return False  # resolved with the buttons, which change the images, not the suspect

    def changelist_view(self, request, extra_context=None):
        context = {
            "title": "Suspects, most suspicious first: keep, exclude or dismiss",
            "last_search": SuspectSearch.objects.first(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    def get_urls(self):
        resolve = self.admin_site.admin_view(self.resolve_view)
        recompute = self.admin_site.admin_view(self.recompute_view)
        return [
            path("<int:pk>/resolve/", resolve, name="catalog_suspect_resolve"),
            path("recompute/", recompute, name="catalog_suspect_recompute"),
            *super().get_urls(),
        ]

    @admin.display(description="Score", ordering="-score")
    def score_display(self, suspect):
        return f"{suspect.score:.2f}"

    @admin.display(description="Pictures (side by side)")
    def pictures(self, suspect):
        # The buttons submit the changelist's own form (it carries the CSRF token) to the resolve URL.
        url = reverse("admin:catalog_suspect_resolve", args=[suspect.pk])
        members = suspect.members.all()
        # Keeping one is a choice while two copies or more are still in search (not on a resolved cluster).
        live = sum(1 for image in members if image.status != EXCLUDED)
        keep = suspect.kind == Suspect.Kind.DUPLICATE and live > 1
        return format_html(
            '<div class="suspect-pictures">{}</div>',
            format_html_join("", "{}", ((suspect_figure(image, keep and url),) for image in members)),
        )

    @admin.display(description="Why")
    def why(self, suspect):
        return format_html('{}<div class="suspect-detail">{}</div>', suspect.reason, suspect.detail)

    @admin.display(description="Resolve")
    def resolve(self, suspect):
        url = reverse("admin:catalog_suspect_resolve", args=[suspect.pk])
        if suspect.kind == Suspect.Kind.DUPLICATE:
            choices = [("dismiss", "Not copies: keep them all")]
        else:
            choices = [("exclude", f"Exclude #{suspect.image_id}"), ("dismiss", "It belongs here")]
            if suspect.suggested_class_id:
                choices.insert(0, ("move", f"Move to {suspect.suggested_class.label}"))
        return format_html_join(
            "",
            '<p><button type="submit" class="button" formaction="{}" name="resolve" value="{}">{}</button></p>',
            ((url, value, label) for value, label in choices),
        )

    def resolve_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        decision = request.POST.get("resolve")
        allowed = self.has_dismiss_permission if decision == "dismiss" else _may_change_images
        if not allowed(request):
            raise PermissionDenied
        suspect = get_object_or_404(
            Suspect.objects.select_related("image", "suggested_class").defer("image__embedding"),
            pk=pk,
        )
        self.message_user(request, curation.resolve_suspect(suspect, decision, request.user))
        return HttpResponseRedirect(self._back(request))

    def recompute_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not _may_change_images(request):
            raise PermissionDenied
        self.message_user(request, _task_message("Finding suspects", tasks.find_suspects.delay()))
        return HttpResponseRedirect(self._back(request))

    def _back(self, request):
        referer = request.headers.get("referer", "")
        if referer and url_has_allowed_host_and_scheme(referer, {request.get_host()}, request.is_secure()):
            return referer
        return reverse("admin:catalog_suspect_changelist")

    def has_dismiss_permission(self, request):
        # Dismissing (the action, or the resolve view's button) changes the suspect, which no one edits by hand
        # (has_change_permission is False): it takes the suspect's change permission as Django grants it.
        return request.user.has_perm("catalog.change_suspect")

    @admin.action(description="Dismiss: nothing wrong here", permissions=["dismiss"])
    def dismiss(self, request, queryset):
        count = queryset.filter(dismissed_at__isnull=True).update(dismissed_at=timezone.now())
        self.message_user(request, f"Dismissed {count} suspect(s).")


def suspect_figure(image, keep_url=None):
    """One picture of a suspect with what a curator needs to judge it; with keep_url, its "Keep this one"."""
    keep = ""
    if keep_url and image.status != EXCLUDED:
        keep = format_html(
            '<button type="submit" class="button" formaction="{}" name="resolve" value="keep-{}">'
            'Keep this one<span class="visually-hidden"> (#{})</span></button>',
            keep_url,
            image.pk,
            image.pk,
        )
    return format_html(
        '<figure class="{}"><a href="{}">{}</a><figcaption>#{} {}<br>{}×{} · {}</figcaption>{}</figure>',
        "excluded" if image.status == EXCLUDED else "",
        reverse("admin:catalog_catalogimage_change", args=[image.pk]),
        thumbnail_tag(image, 160),
        image.pk,
        image.wikidata_class.label,
        image.width,
        image.height,
        image.get_status_display(),
        keep,
    )


def _may_change_images(request):
    """Excluding, moving and recomputing change catalog images."""
    return request.user.has_perm("catalog.change_catalogimage")
