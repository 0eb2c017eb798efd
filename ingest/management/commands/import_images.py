from django.core.management.base import BaseCommand, CommandError

from catalog.progress import progress_bar
from catalog.store import MediaWriteError
from ingest.local import import_folder


class Command(BaseCommand):
    help = "Import a folder of images: each immediate subfolder is a class (underscores read as spaces)."

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--no-progress", action="store_true", help="Do not show a progress bar")

    def handle(self, directory, no_progress=False, **options):
        try:
            summary = import_folder(directory, progress=progress_bar(not no_progress, unit="img"))
        except (MediaWriteError, OSError) as exc:
            # One line naming the folder and the reason (--traceback shows the rest): a missing or unreadable
            # import folder, or a media folder that takes no files.
            raise CommandError(str(exc)) from exc
        for path, reason in summary.failures:
            self.stderr.write(f"failed: {path}: {reason}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{summary.created} created, {summary.skipped} skipped (already in the catalog), "
                f"{summary.failed} failed"
            )
        )
