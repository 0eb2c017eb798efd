from django.core.management.base import BaseCommand, CommandError

from catalog.progress import progress_bar
from ingest.management.progress import describe, interrupt_on_sigterm
from ingest.pipeline import run_embeddings


class Command(BaseCommand):
    help = "Embed every catalog image without a vector from the current model."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument("--no-progress", action="store_true")

    @interrupt_on_sigterm
    def handle(self, batch_size, no_progress, **options):
        try:
            recorder = run_embeddings(batch_size, progress_bar(not no_progress))
        except KeyboardInterrupt:
            raise CommandError("Interrupted; run the command again to continue.", returncode=130) from None
        for line in describe("embeddings", recorder):
            self.stdout.write(line)
