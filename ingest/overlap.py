"""Fetching planned images with the network kept busy: one download thread asks Commons for the next images
while the calling thread decodes, embeds and stores the ones before.

The pace per host is the crawl's limit (catalog.http.crawler): a download waiting for its turn never waits
for the model, and the model never waits for a download that could have started. The guarantees stay those
of ingest.crawl.fetch_source: the calling thread claims each image before its download is asked for and
holds the claim until it is stored, and does every database write; the download thread only talks to
Commons, through the same polite client (one request at a time per process, at each host's pace).
"""

import functools
import queue
import threading
from collections import deque
from concurrent.futures import Future
from contextlib import ExitStack

from catalog.http import crawler as http

from . import crawl

# Images claimed ahead of the one being stored: one downloading, one downloaded and waiting. More would only
# hold more claims (and download more again after a kill) without fetching faster: one request goes out at a
# time.
AHEAD = 2


def fetch_in_order(source_ids, embed=False, ahead=AHEAD):
    """Fetch and store the planned images in order, downloading up to `ahead` of them before the one being
    stored (ahead=0: one after the other in this thread). Yields (source_id, outcome, detail) as
    crawl.fetch_source returns them, or (source_id, "pending", error) when a transient error left the image
    to a later run."""
    downloader = Downloader() if ahead else None
    in_flight = deque()
    ids = iter(source_ids)
    try:
        while True:
            while len(in_flight) <= ahead and (source_id := next(ids, None)) is not None:
                in_flight.append(_start(source_id, downloader))
            if not in_flight:
                return
            yield _store(*in_flight.popleft(), embed)
    finally:
        for _, claim, _, download in in_flight:  # stopped early (Ctrl-C): release what was claimed
            if isinstance(download, Future):
                download.cancel()  # unless already under way
            claim.close()
        if downloader:
            downloader.close()


def _start(source_id, downloader):
    """Claim a planned image and have its download asked for: (id, claim, source or outcome, download)."""
    claim = ExitStack()
    source, outcome = claim.enter_context(crawl.claimed_source(source_id))
    if source is None:
        claim.close()
        return source_id, claim, outcome, None
    call = functools.partial(crawl.download, source)
    return source_id, claim, source, downloader.submit(call) if downloader else call


def _store(source_id, claim, source, download, embed):
    if download is None:  # not ours to fetch: source is the outcome
        return source_id, *source
    with claim:
        fetched = download.result if isinstance(download, Future) else download
        try:
            return source_id, *crawl.store_fetched(source, fetched, embed)
        except http.TransientHTTPError as exc:
            return source_id, "pending", exc


class Downloader:
    """A daemon thread running downloads in the order asked, each answered through a Future.

    A daemon, so that a crawl stopped (Ctrl-C, SIGTERM) ends at once: the download in flight is dropped with
    its claim, and the next run downloads it again.
    """

    def __init__(self):
        self.jobs = queue.SimpleQueue()
        threading.Thread(target=self._run, name="crawl-download", daemon=True).start()

    def submit(self, call):
        future = Future()
        self.jobs.put((future, call))
        return future

    def close(self):
        self.jobs.put(None)

    def _run(self):
        for future, call in iter(self.jobs.get, None):
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # handed to the thread that stores, which decides
                future.set_exception(exc)
