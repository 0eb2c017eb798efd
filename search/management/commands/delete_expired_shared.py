from django.core.management.base import BaseCommand

from search import shared


class Command(BaseCommand):
    help = (
        "Delete the kept queries of uploads whose links have expired (REVIMG_SHARED_QUERY_HOURS), pictures "
        "and all. Celery beat runs this every hour (search.tasks)."
    )

    def handle(self, **options):
        self.stdout.write(f"deleted {shared.delete_expired()} expired shared searches")
