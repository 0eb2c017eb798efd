from django.core.management.base import BaseCommand

from catalog.progress import progress_bar
from ingest import starter


class Command(BaseCommand):
    help = (
        "Give an empty catalog something to search: crawl a few hundred classes from Wikimedia, or, when "
        "Wikimedia is unreachable, import REVIMG_STARTER_DIR (or ../shared/datasets/caltech101-dev)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, no_progress, **options):
        starter.build(self.stdout.write, progress_bar(not no_progress))
