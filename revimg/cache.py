"""The shared cache without Redis: Django's database cache, with an increment every process can trust.

Django's DatabaseCache.incr reads, adds and writes in separate steps (and resets the entry's expiry), so
two workers counting the same search limit at once can lose a count. Here the row is locked while it is
read and rewritten (two statements), and its expiry is kept, as Redis' INCR does.
"""

import base64
import pickle

from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction
from django.utils import timezone


class AtomicDatabaseCache(DatabaseCache):
    def incr(self, key, delta=1, version=None):
        value = self._add_if_present(self.make_and_validate_key(key, version=version), delta)
        if value is None:
            raise ValueError(f"Key '{key}' not found")
        return value

    def _add_if_present(self, db_key, delta):
        """The new value, or None when the key is missing or expired (nothing raised inside the
        transaction, which without a savepoint would spoil an enclosing one)."""
        alias = router.db_for_write(self.cache_model_class)
        table = connections[alias].ops.quote_name(self._table)
        with transaction.atomic(using=alias, savepoint=False), connections[alias].cursor() as cursor:
            cursor.execute(f"SELECT value, expires FROM {table} WHERE cache_key = %s FOR UPDATE", [db_key])
            row = cursor.fetchone()
            if row is None or row[1] < timezone.now():
                return None
            value = self._decode(row[0]) + delta
            cursor.execute(
                f"UPDATE {table} SET value = %s WHERE cache_key = %s", [self._encode(value), db_key]
            )
        return value

    # The table's format, as Django's DatabaseCache writes and reads it: a base64 pickle.
    def _encode(self, value):
        return base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")

    @staticmethod
    def _decode(text):
        return pickle.loads(base64.b64decode(text.encode()))
