"""Crawl state: which images each class should get and how far each got, and a record of every run.

These rows are what makes the crawler safe to stop and run again: a planned image is fetched once, and a
run says what it did, how far it got and why things failed.
"""

import os
import socket

from django.db import models
from django.utils import timezone


class ImageSourceQuerySet(models.QuerySet):
    def to_fetch(self):
        """Planned images not fetched yet, oldest plan first (failed ones wait for --retry-failed)."""
        return self.filter(status=ImageSource.Status.PENDING).order_by("id")

    def planned(self):
        """The images planned to be fetched, whatever became of them: spares left out."""
        return self.exclude(status=ImageSource.Status.SPARE)

    def spares(self):
        """Spare candidates, best known first: the next one stands in when a planned image proves unusable."""
        return self.filter(status=ImageSource.Status.SPARE).order_by("rank", "id")

    def pictures_counted(self, class_id):
        """What counts toward a class's per_class pictures: its images still to fetch, and the distinct
        pictures of its own its fetched ones gave it (not a file stored for another class, nor the same
        content twice)."""
        of_class = self.filter(wikidata_class_id=class_id)
        fetched = of_class.filter(status=ImageSource.Status.DONE, image__wikidata_class_id=class_id)
        return of_class.to_fetch().count() + fetched.values("image_id").distinct().count()


class ImageSource(models.Model):
    """A Commons file planned as an image of a class, and what became of it."""

    class Status(models.TextChoices):
        PENDING = "pending", "To fetch"
        SPARE = "spare", "Spare (fetched if another proves unusable)"
        DONE = "done", "Fetched"
        SKIPPED = "skipped", "Skipped (non-free, not a photo, gone)"
        FAILED = "failed", "Failed"

    wikidata_class = models.ForeignKey(
        "catalog.WikidataClass", on_delete=models.CASCADE, related_name="image_sources"
    )
    commons_file = models.CharField("Commons file name", max_length=255)
    origin = models.CharField(max_length=16)  # a catalog.CatalogImage.Origin value
    origin_detail = models.CharField(max_length=255, blank=True)
    rank = models.PositiveIntegerField(default=0, help_text="0 for the class's own image, then the gallery")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    image = models.ForeignKey(
        "catalog.CatalogImage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ImageSourceQuerySet.as_manager()

    class Meta:
        constraints = [
            # A file is planned once per class: re-planning a class adds nothing twice.
            models.UniqueConstraint(fields=["wikidata_class", "commons_file"], name="image_source_unique"),
        ]
        indexes = [models.Index(fields=["status"], name="image_source_status")]  # to_fetch()

    def __str__(self):
        return f"{self.commons_file} for {self.wikidata_class_id} ({self.status})"


class ClassCrawlQuerySet(models.QuerySet):
    def planned(self):
        """Classes whose images were planned from their Wikidata item: the ones upkeep re-crawls."""
        return self.filter(planned_at__isnull=False, wikidata_class__qid__isnull=False)


class ClassCrawl(models.Model):
    """Per class: when its images were planned (so a re-run does not ask Wikimedia again)."""

    wikidata_class = models.OneToOneField(
        "catalog.WikidataClass", on_delete=models.CASCADE, related_name="crawl_state"
    )
    planned_at = models.DateTimeField(null=True, blank=True)
    per_class = models.PositiveIntegerField(default=0, help_text="Gallery size asked for when planned")
    reason = models.TextField(blank=True, help_text="Why planning found nothing or failed")
    # The gallery's last question to the query service: how many instances it asked for, and whether the
    # answer was full (then asking for more may find more pictures when spares run out).
    instances_asked = models.PositiveIntegerField(default=0)
    more_instances = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ClassCrawlQuerySet.as_manager()

    def __str__(self):
        return f"crawl of class {self.wikidata_class_id}"


def process_exists(pid):
    """Whether a process with this id exists on this machine (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


class IngestRunQuerySet(models.QuerySet):
    def mark_abandoned(self):
        """Mark interrupted the runs still "running" whose process on this machine is gone (SIGKILL, out of
        memory, a reboot): no one else would ever finish them. Returns how many.

        Runs of other machines are left alone: their processes cannot be seen from here. A pid taken again
        by an unrelated process after a reboot keeps its run "running" until that process ends too.
        """
        running = self.filter(status=IngestRun.Status.RUNNING, host=socket.gethostname(), pid__isnull=False)
        gone = [run.id for run in running.only("id", "pid") if not process_exists(run.pid)]
        return self.filter(id__in=gone, status=IngestRun.Status.RUNNING).update(
            status=IngestRun.Status.INTERRUPTED,
            error="Its process ended without finishing it (killed?); found by a later run.",
        )


class IngestRun(models.Model):
    """One run of a crawl step: what ran with which arguments, how far it got, what failed and why."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        INTERRUPTED = "interrupted", "Interrupted"

    kind = models.CharField(max_length=32)  # classes, images, files, embeddings, crawl, import, upkeep:<job>
    arguments = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    total = models.PositiveIntegerField(null=True, blank=True)
    processed = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    failures = models.JSONField(default=list, blank=True, help_text="The first failures: [what, why]")
    summary = models.TextField(blank=True, help_text="What the run did, in a line (upkeep jobs)")
    error = models.TextField(blank=True, help_text="Why the run stopped, when it did not finish")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The process that runs it, so a later run can tell one that was killed from one still going.
    host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)

    objects = IngestRunQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.kind} {self.started_at:%Y-%m-%d %H:%M} ({self.status})"
