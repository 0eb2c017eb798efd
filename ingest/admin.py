"""Ingest in the admin: every crawl and embedding run (what ran, how far, what failed and why), and the
crawl plan per image. Runs are records: read-only here."""

from django.contrib import admin
from django.db.models import F
from django.utils.html import format_html, format_html_join

from .models import ImageSource, IngestRun


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(IngestRun)
class IngestRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "kind", "status", "progress", "created", "skipped", "failed", "duration")
    list_filter = ("status", "kind")
    search_fields = ("kind", "error")
    ordering = ("-started_at",)
    date_hierarchy = "started_at"
    fields = (
        ("kind", "status"),
        "arguments",
        ("started_at", "finished_at", "duration"),
        ("host", "pid"),
        ("total", "processed", "progress"),
        ("created", "skipped", "failed"),
        "summary",
        "error",
        "failure_table",
    )
    readonly_fields = ("duration", "progress", "failure_table")

    @admin.display(description="Progress", ordering="processed")
    def progress(self, run):
        if not run.total:
            return f"{run.processed}"
        return f"{run.processed} / {run.total} ({100 * run.processed / run.total:.0f} %)"

    @admin.display(description="Duration", ordering=F("finished_at") - F("started_at"))
    def duration(self, run):
        if run.finished_at is None:
            return "still running" if run.status == IngestRun.Status.RUNNING else "—"
        seconds = int((run.finished_at - run.started_at).total_seconds())
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    @admin.display(description="Failures (first ones kept)")
    def failure_table(self, run):
        if not run.failures:
            return "none"
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td></tr>", (tuple(f[:2]) for f in run.failures))
        return format_html("<table><tr><th>What</th><th>Why</th></tr>{}</table>", rows)


@admin.register(ImageSource)
class ImageSourceAdmin(admin.ModelAdmin):
    list_display = (
        "commons_file",
        "wikidata_class",
        "origin",
        "rank",
        "status",
        "attempts",
        "reason",
        "updated_at",
    )
    list_filter = ("status", "origin")
    list_select_related = ("wikidata_class",)
    search_fields = ("commons_file", "wikidata_class__label", "=wikidata_class__qid")
    ordering = ("wikidata_class__label", "rank")
    raw_id_fields = ("wikidata_class", "image")
    readonly_fields = [f.name for f in ImageSource._meta.fields if f.name not in ("status", "reason")]
    actions = ["fetch_again"]

    def has_add_permission(self, request):
        return False  # plans come from the crawler

    @admin.action(description="Fetch again at the next crawl", permissions=["change"])
    def fetch_again(self, request, queryset):
        count = queryset.exclude(status=ImageSource.Status.DONE).update(status=ImageSource.Status.PENDING)
        self.message_user(request, f"{count} planned image(s) will be fetched at the next crawl.")
