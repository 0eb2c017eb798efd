"""Every query goes to the primary database, except the search reads that catalog.replicas sends to a read
replica by name (QuerySet.using); migrations run on the primary only."""

from django.db import DEFAULT_DB_ALIAS


class PrimaryRouter:
    def db_for_read(self, model, **hints):
        # A row read on a replica reads its relations there too (Django's default: the row's own database).
        instance = hints.get("instance")
        return instance._state.db if instance is not None and instance._state.db else DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        # Never the row's own database: a search result saved, or linked from a new row, is written on the
        # primary, which is the only one that takes writes.
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # replicas hold the same rows

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS
