from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.http import crawler as http
from catalog.progress import progress_bar
from ingest import tasks
from ingest.management.progress import describe, interrupt_on_sigterm
from ingest.pipeline import run_crawl


class Command(BaseCommand):
    help = (
        "The whole Wikimedia crawl: top classes, their images and licences, embeddings. "
        "Safe to stop and run again: it continues where it stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--classes", type=int, default=300, help="How many classes (default 300)")
        parser.add_argument("--per-class", type=int, default=1, help="Images per class in all (default 1)")
        parser.add_argument("--dump", type=Path, help="Take classes from a Wikidata JSON dump file")
        parser.add_argument("--refresh", action="store_true", help="Ask Wikidata again for known classes")
        parser.add_argument("--no-embed", action="store_true", help="Store images without embedding them")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--queue",
            action="store_true",
            help="Hand the crawl to the Celery workers (CELERY_BROKER_URL) and return at once",
        )

    @interrupt_on_sigterm
    def handle(self, classes, per_class, dump, refresh, no_embed, no_progress, queue, **options):
        if queue:
            self.hand_to_workers(classes, per_class, dump, refresh, no_embed)
            return
        if dump is not None and not dump.is_file():
            raise CommandError(f"{dump} is not a file")
        try:
            runs = run_crawl(classes, per_class, dump, refresh, not no_embed, progress_bar(not no_progress))
        except http.HTTPError as exc:
            raise CommandError(f"Wikidata did not answer: {exc}") from exc
        except KeyboardInterrupt:
            raise CommandError("Interrupted; run the command again to continue.", returncode=130) from None
        for kind, recorder in zip(("classes", "images", "embeddings"), runs, strict=True):
            if recorder is not None:
                for line in describe(kind, recorder):
                    self.stdout.write(line)

    def hand_to_workers(self, classes, per_class, dump, refresh, no_embed):
        if not settings.CELERY_BROKER_URL:
            raise CommandError(
                "--queue needs CELERY_BROKER_URL: without a broker there are no workers to ask"
            )
        # The workers may run on other machines: a dump file here is not theirs to read, and the tasks always
        # embed and never ask Wikidata again for known classes.
        if dump is not None or refresh or no_embed:
            raise CommandError("--queue takes only --classes and --per-class")
        result = tasks.crawl_task.delay(classes, per_class)
        self.stdout.write(f"Crawl queued for the workers (task {result.id}).")
