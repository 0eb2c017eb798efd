import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from catalog.suspects import backfill_phashes


class Command(BaseCommand):
    help = "Compute the perceptual hash of images stored before it was recorded."

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", action="store_true", help="Do not show a progress bar")

    def handle(self, no_progress=False, **options):
        show_bar = not no_progress and sys.stderr.isatty()
        progress = (lambda rows: tqdm(rows, unit="img", file=sys.stderr)) if show_bar else None
        done, failed = backfill_phashes(progress=progress)
        self.stdout.write(self.style.SUCCESS(f"{done} hashed, {failed} failed"))
