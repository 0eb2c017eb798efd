from django.core.management.base import BaseCommand

from catalog.progress import progress_bar
from catalog.suspects import backfill_phashes


class Command(BaseCommand):
    help = "Compute the perceptual hash of images stored before it was recorded."

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", action="store_true", help="Do not show a progress bar")

    def handle(self, no_progress=False, **options):
        done, failed = backfill_phashes(progress=progress_bar(not no_progress, unit="img"))
        self.stdout.write(self.style.SUCCESS(f"{done} hashed, {failed} failed"))
