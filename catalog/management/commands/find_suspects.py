from django.core.management.base import BaseCommand

from catalog.suspects import find_suspects


class Command(BaseCommand):
    help = (
        "Score every searchable image as a possible outlier in its class or a duplicate of another, and "
        "store the suspects the admin lists (Catalog > Suspects). Computes missing perceptual hashes first."
    )

    def handle(self, **options):
        summary = find_suspects()
        self.stdout.write(
            self.style.SUCCESS(
                f"{summary.outliers} outliers, {summary.duplicates} duplicate pairs "
                f"({summary.phashes} perceptual hashes computed)"
            )
        )
