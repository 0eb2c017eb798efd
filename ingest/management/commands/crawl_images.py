from django.core.management.base import BaseCommand, CommandError

from catalog.progress import progress_bar
from ingest.management.progress import describe, interrupt_on_sigterm
from ingest.pipeline import catalog_class_ids, run_images


class Command(BaseCommand):
    help = (
        "Plan and fetch images for the Wikidata classes in the catalog: each class's own image, a gallery "
        "of its well-known instances, with licences from Commons. Files are stored, not yet embedded."
    )

    def add_arguments(self, parser):
        parser.add_argument("--classes", type=int, help="Only the N classes with the most instances")
        parser.add_argument("--per-class", type=int, default=1, help="Images per class in all (default 1)")
        parser.add_argument("--retry-failed", action="store_true", help="Try failed images again")
        parser.add_argument("--no-progress", action="store_true")

    @interrupt_on_sigterm
    def handle(self, classes, per_class, retry_failed, no_progress, **options):
        ids = catalog_class_ids(classes)
        if not ids:
            raise CommandError("No Wikidata classes in the catalog yet: run crawl_classes first.")
        try:
            recorder = run_images(ids, per_class, retry_failed, progress_bar(not no_progress))
        except KeyboardInterrupt:
            raise CommandError("Interrupted; run the command again to continue.", returncode=130) from None
        for line in describe("images", recorder):
            self.stdout.write(line)
