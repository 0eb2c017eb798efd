from django.core.management.base import BaseCommand, CommandError

from ingest import upkeep
from ingest.management.progress import interrupt_on_sigterm


class Command(BaseCommand):
    help = (
        "Run the upkeep jobs once, here, without a broker: suspects, class statistics, re-embedding, "
        "re-crawling changed Wikidata classes, the media sweep. Each is recorded as an IngestRun."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--only",
            action="append",
            choices=list(upkeep.JOBS),
            help="Run this job only (repeat for several); default: all of them, in the order above",
        )

    @interrupt_on_sigterm
    def handle(self, only=None, **options):
        jobs = [job for job in upkeep.JOBS if job in only] if only else list(upkeep.JOBS)
        outcomes = upkeep.run_all(jobs)
        for outcome in outcomes:
            style = self.style.ERROR if outcome.status == "failed" else self.style.SUCCESS
            self.stdout.write(style(str(outcome)))
        failed = [outcome.job for outcome in outcomes if outcome.status == "failed"]
        if failed:
            raise CommandError(f"upkeep failed: {', '.join(failed)}")
