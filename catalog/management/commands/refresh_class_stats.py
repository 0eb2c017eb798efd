import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from catalog.classstats import refresh


class Command(BaseCommand):
    help = (
        "Recompute the stored statistics (count, tightness, centroid) of classes whose searchable images "
        "changed since they were computed; searches would otherwise recompute them on first use."
    )

    def add_arguments(self, parser):
        parser.add_argument("class_ids", nargs="*", type=int, help="Class ids (default: every class)")

    def handle(self, class_ids, **options):
        progress = (lambda ids: tqdm(ids, unit="class", file=sys.stderr)) if sys.stderr.isatty() else None
        count = refresh(class_ids or None, progress=progress)
        self.stdout.write(self.style.SUCCESS(f"{count} classes recomputed, the others were up to date"))
