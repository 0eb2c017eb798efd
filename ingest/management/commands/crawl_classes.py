from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalog.http import crawler as http
from catalog.progress import progress_bar
from ingest.management.progress import describe, interrupt_on_sigterm
from ingest.pipeline import run_classes


class Command(BaseCommand):
    help = "Fetch the Wikidata classes with the most instances (SPARQL, or a JSON dump with --dump)."

    def add_arguments(self, parser):
        parser.add_argument("--classes", type=int, default=300, help="How many classes (default 300)")
        parser.add_argument("--dump", type=Path, help="A Wikidata JSON dump (.json, .json.gz, .json.bz2)")
        parser.add_argument("--refresh", action="store_true", help="Ask Wikidata again for known classes")
        parser.add_argument("--no-progress", action="store_true")

    @interrupt_on_sigterm
    def handle(self, classes, dump, refresh, no_progress, **options):
        if dump is not None and not dump.is_file():
            raise CommandError(f"{dump} is not a file")
        try:
            _, recorder = run_classes(classes, dump, refresh, progress_bar(not no_progress))
        except http.HTTPError as exc:
            raise CommandError(f"Wikidata did not answer: {exc}") from exc
        except KeyboardInterrupt:
            raise CommandError("Interrupted; run the command again to continue.", returncode=130) from None
        for line in describe("classes", recorder):
            self.stdout.write(line)
