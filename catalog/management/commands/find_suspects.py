from django.core.management.base import BaseCommand

from catalog.suspects import find_suspects


class Command(BaseCommand):
    help = (
        "Score every searchable image as a possible outlier in its class or a duplicate of another, and "
        "store the suspects the admin lists (Catalog > Suspects). Computes missing perceptual hashes first."
    )

    def handle(self, **options):
        self.stdout.write(self.style.SUCCESS(str(find_suspects())))
