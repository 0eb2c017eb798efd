"""Health checks for load balancers: say whether, never why (the reason goes to the log, not the caller).

/healthz: the process answers and reaches its database (a liveness probe).
/readyz: it can serve searches now: database, the image model loaded in this worker, the shared cache.
It also says whether each read replica answers, without failing for one that does not: searches then go
to the primary (catalog.replicas).
"""

import logging

from django.core.cache import cache
from django.db import connection, connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from catalog.embedding import get_embedder
from catalog.replicas import replicas

logger = logging.getLogger(__name__)


def _database_answers(database=connection):
    with database.cursor() as cursor:
        cursor.execute("SELECT 1")
    return True


def _model_loaded():
    return get_embedder().is_loaded


def _cache_answers():
    # A read is enough: Redis (or the cache table) must answer; a missing key is an answer too.
    cache.get("revimg:readyz")
    return True


def _passes(name, check):
    try:
        return bool(check())
    except Exception:
        logger.exception("health check %s failed", name)
        return False


def _answer(results):
    ok = all(results.values())
    body = {"status": "ok" if ok else "unavailable"}
    return body, (200 if ok else 503)


@never_cache
@require_safe
def healthz(request):
    body, status = _answer({"database": _passes("database", _database_answers)})
    return JsonResponse(body, status=status)


@never_cache
@require_safe
def readyz(request):
    checks = {
        "database": _passes("database", _database_answers),
        "model": _passes("model", _model_loaded),
        "cache": _passes("cache", _cache_answers),
    }
    body, status = _answer(checks)
    body["checks"] = _said(checks)
    if replicas():
        body["replicas"] = _said(
            {
                alias: _passes(alias, lambda alias=alias: _database_answers(connections[alias]))
                for alias in replicas()
            }
        )
    return JsonResponse(body, status=status)


def _said(results):
    return {name: "ok" if passed else "failing" for name, passed in results.items()}
