from django.core.management.base import BaseCommand

from catalog.classstats import refresh
from catalog.progress import progress_bar


class Command(BaseCommand):
    help = (
        "Recompute the stored statistics (count, tightness, centroid) of classes whose searchable images "
        "changed since they were computed; searches would otherwise recompute them on first use."
    )

    def add_arguments(self, parser):
        parser.add_argument("class_ids", nargs="*", type=int, help="Class ids (default: every class)")

    def handle(self, class_ids, **options):
        count = refresh(class_ids or None, progress=progress_bar(unit="class"))
        self.stdout.write(self.style.SUCCESS(f"{count} classes recomputed, the others were up to date"))
