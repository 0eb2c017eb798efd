"""One log line per search, the page's and the API's alike, and a signal for whoever counts searches.

A line says what kind of search it was (upload, url, similar, or shared: an upload's kept query searched
again from its link), how it ended (status, match and the answer's state, or the refusal's code), how long
it took and how many results were asked for. Never what was searched: not the picture, not its file name, not the address we
were asked to fetch (it may carry someone's token or say who they are), not a shared link's token, and no
query string. Refusal messages are left out too, since some quote the address.
"""

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass

from django.dispatch import Signal
from rest_framework.exceptions import APIException

from catalog.errors import Refusal
from revimg.errorpages import is_database_outage

from .service import SearchResult

logger = logging.getLogger("revimg.search")

# Sent with report=SearchReport once each search is over and logged (revimg.metrics counts them), so
# search never depends on the metrics.
search_finished = Signal()


@dataclass
class SearchReport:
    kind: str  # upload, url, similar or shared
    k: int | None = None  # None until it is read (a refused k never is)
    status: int = 200
    error: str | None = None  # the refusal's code
    took_ms: float = 0.0
    result: SearchResult | None = None

    @property
    def outcome(self):
        if self.error:
            return self.error
        return self.result.state if self.result else "no_match"

    @property
    def timings(self):
        return self.result.timings if self.result else {}

    def line(self):
        """key=value pairs, "-" for what is not known."""
        match = "-" if self.result is None else str(self.result.match).lower()
        state = "-" if self.result is None else self.result.state
        fields = {
            "kind": self.kind,
            "status": self.status,
            "took_ms": f"{self.took_ms:.1f}",
            "k": "-" if self.k is None else self.k,
            "match": match,
            "state": state,
        }
        if self.error:
            fields["error"] = self.error
        return " ".join(f"{key}={value}" for key, value in fields.items())


def query_kind(url):
    """What a posted search asked for: an address to fetch, or (anything else) an uploaded picture."""
    return "url" if url else "upload"


@contextmanager
def reported(kind, k=None):
    """Log and announce the search made in the block, however it ends.

    The block fills in what it learns (report.k, report.result); an exception is reported with the code and
    status its error answer will have, then raised again for the view to answer with.
    """
    report = SearchReport(kind, k)
    started = time.perf_counter()
    try:
        yield report
    except Exception as exc:
        report.error, report.status = _error_answer(exc)
        raise
    finally:
        report.took_ms = (time.perf_counter() - started) * 1000
        logger.info("search %s", report.line())
        # Robust: a failing listener is logged by Django and never turns a search into an error.
        search_finished.send_robust(sender=SearchReport, report=report)


def _error_answer(exc):
    """(code, status) of the answer an exception becomes: see search.api.exception_handler and
    revimg.errorpages."""
    if isinstance(exc, Refusal):
        return exc.code, exc.status
    if isinstance(exc, APIException):
        return str(exc.default_code), exc.status_code
    if is_database_outage(exc):
        return "unavailable", 503  # revimg.errorpages answers it
    return "server_error", 500
