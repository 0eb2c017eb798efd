"""Fetching planned images with the network kept busy: one download thread asks Commons for the next images
while the calling thread decodes and stores the ones before, and one model thread embeds the stored ones.

The pace per host is the crawl's limit (catalog.http.crawler): a download waiting for its turn never waits
for the model, and the model never waits for a download that could have started. The guarantees stay those
of ingest.crawl.fetch_source: the calling thread claims each image before its download is asked for, holds
the claim until the image is stored, and does every database write; the download thread only talks to
Commons, through the same polite client (one request at a time per process, at each host's pace), and the
model thread only computes vectors. An image stored but not yet embedded when the crawl stops is embedded
by the crawl's embedding step, as any image without a vector.
"""

import functools
import logging
import queue
import threading
from collections import deque
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import dataclass, field

from catalog import store
from catalog.http import crawler as http

from . import crawl
from .models import ImageSource

log = logging.getLogger(__name__)

# Images claimed ahead of the one being stored: one downloading, one downloaded and waiting. More would only
# hold more claims (and download more again after a kill) without fetching faster: one request goes out at a
# time.
AHEAD = 2
CLOSE_TIMEOUT_S = 60  # a bound for a model that does not answer, not a measurement


def fetch_in_order(source_ids, embed=False, ahead=AHEAD):
    """Fetch and store the planned images in order, downloading up to `ahead` of them before the one being
    stored (ahead=0: one after the other in this thread), and embed each stored one when embed. Yields
    (source_id, outcome, detail) as crawl.fetch_source returns them, or (source_id, "pending", error) when a
    transient error left the image to a later run."""
    downloader = Downloader() if ahead else None
    embedder = Embedder() if embed else None
    in_flight = deque()
    ids = iter(source_ids)
    try:
        while True:
            while len(in_flight) <= ahead and (source_id := next(ids, None)) is not None:
                in_flight.append(_start(source_id, downloader, in_flight))
            if not in_flight:
                break
            yield _store(in_flight.popleft(), embedder)
            if embedder:
                crawl.save_vectors(embedder.embedded())
        if embedder:
            crawl.save_vectors(embedder.embedded(wait=True))
    finally:
        for fetch in in_flight:  # stopped early (Ctrl-C): release what was claimed
            if isinstance(fetch.download, Future):
                fetch.download.cancel()  # unless already under way
            fetch.claim.close()
        for worker in (downloader, embedder):
            if worker:
                worker.close()


@dataclass
class Fetch:
    """A planned image on its way: claimed, with its download asked for; or already decided (outcome); or
    left to claim when its turn comes (later)."""

    source_id: int
    claim: ExitStack = field(default_factory=ExitStack)
    source: object = None  # the ImageSource, when it is this caller's to fetch
    outcome: tuple | None = None
    download: object = None  # a Future from the Downloader, or the call itself to run in this thread
    later: bool = False


def _start(source_id, downloader, in_flight):
    """Claim a planned image and have its download asked for."""
    fetch = Fetch(source_id)
    if downloader and _file_of(source_id) in {f.source.commons_file for f in in_flight if f.source}:
        # The same file planned for another class is on its way: this one waits its turn, to find it stored
        # rather than download it again.
        fetch.later = True
        return fetch
    fetch.source, fetch.outcome = fetch.claim.enter_context(crawl.claimed_source(source_id))
    if fetch.source is None:
        fetch.claim.close()
        return fetch
    call = functools.partial(crawl.download, fetch.source)
    fetch.download = downloader.submit(call) if downloader else call
    return fetch


def _file_of(source_id):
    return ImageSource.objects.filter(id=source_id).values_list("commons_file", flat=True).first()


def _store(fetch, embedder):
    if fetch.later:
        fetch = _start(fetch.source_id, None, ())
    if fetch.source is None:  # not this caller's to fetch
        return fetch.source_id, *fetch.outcome
    with fetch.claim:
        fetched = fetch.download.result if isinstance(fetch.download, Future) else fetch.download
        try:
            stored = embedder.add if embedder else None
            return fetch.source_id, *crawl.store_fetched(fetch.source, fetched, stored)
        except http.TransientHTTPError as exc:
            return fetch.source_id, "pending", exc


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


class Embedder:
    """A daemon thread embedding stored images, as many at a time as are waiting (up to BATCH): when the
    model falls behind, its batches grow and each picture costs it less. At most BACKLOG images wait (each
    holds its decoded picture); past that, storing waits for the model.
    """

    BATCH = 16  # as ingest.crawl.embed_images
    BACKLOG = 32

    def __init__(self):
        self.waiting = queue.Queue(maxsize=self.BACKLOG)
        self.results = queue.SimpleQueue()
        self.pending = 0  # images handed over and not yet taken back with their vectors
        self.thread = threading.Thread(target=self._run, name="crawl-embed", daemon=True)
        self.thread.start()

    def add(self, image, candidate):
        self.waiting.put((image, candidate))
        self.pending += 1

    def embedded(self, wait=False):
        """(image, vector) pairs the model has finished; with wait, all of them, once they are done."""
        pairs = []
        while self.pending and (wait or not self.results.empty()):
            batch, vectors = self.results.get()
            self.pending -= len(batch)
            if isinstance(vectors, BaseException):
                log.warning("%d stored images left to the embedding step: %s", len(batch), vectors)
                continue
            pairs += [(image, vector) for (image, _), vector in zip(batch, vectors, strict=True)]
        return pairs

    def close(self):
        """Stop the thread once its batch in hand is done; images still waiting are left to the embedding
        step. Waited for: the model must not be running while the process exits."""
        try:
            while True:
                self.waiting.get_nowait()
        except queue.Empty:
            self.waiting.put(None)
        self.thread.join(CLOSE_TIMEOUT_S)

    def _run(self):
        for first in iter(self.waiting.get, None):
            batch = [first]
            while len(batch) < self.BATCH and not self.waiting.empty():
                item = self.waiting.get()
                if item is None:
                    self.waiting.put(None)  # seen again by the loop, after this batch
                    break
                batch.append(item)
            try:
                self.results.put((batch, store.embed([candidate for _, candidate in batch])))
            except Exception as exc:  # handed to the calling thread, which leaves them to the embedding step
                self.results.put((batch, exc))
