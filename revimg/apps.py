from django.apps import AppConfig
from django.db.models.signals import post_migrate


def create_cache_table(using, **_kwargs):
    # The shared cache's table (when no Redis is configured) comes with every migrate, so a fresh
    # installation needs no extra step; the command does nothing when it exists.
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)


class RevimgConfig(AppConfig):
    name = "revimg"
    verbose_name = "revimg wiring"

    def ready(self):
        post_migrate.connect(create_cache_table, sender=self, dispatch_uid="revimg-cache-table")
