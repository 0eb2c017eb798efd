"""Recording runs: every crawl step writes an IngestRun saying how far it got and what failed."""

import os
import socket
from contextlib import contextmanager

from django.db import DatabaseError, connection
from django.utils import timezone

from .models import IngestRun

MAX_FAILURES_KEPT = 200
SAVE_EVERY = 20


class RunRecorder:
    """Counts outcomes into an IngestRun row, saving every few items so a killed run still tells."""

    def __init__(self, run):
        self.run = run
        self._unsaved = 0

    def set_total(self, total):
        self.run.total = total
        self.run.save(update_fields=["total"])

    def created(self, n=1):
        self._count("created", n)

    def skipped(self, n=1):
        self._count("skipped", n)

    def done(self, n=1):
        """Items handled that created nothing new (files removed, figures recomputed): progress only."""
        self._advance(n)

    def failed(self, what, why):
        if len(self.run.failures) < MAX_FAILURES_KEPT:
            self.run.failures.append([str(what), str(why)])
        self._count("failed", 1)

    def _count(self, field, n):
        setattr(self.run, field, getattr(self.run, field) + n)
        self._advance(n)

    def _advance(self, n):
        self.run.processed += n
        self._unsaved += n
        if self._unsaved >= SAVE_EVERY:
            self.save()

    def save(self):
        self.run.save()
        self._unsaved = 0

    def summary(self):
        r = self.run
        return f"{r.created} created, {r.skipped} skipped, {r.failed} failed"


@contextmanager
def recorded_run(kind, **arguments):
    """An IngestRun for the duration of the block: done, interrupted (Ctrl-C, SIGTERM) or failed.

    A run killed outright (SIGKILL) cannot say so itself: the next run marks it interrupted.
    """
    IngestRun.objects.mark_abandoned()
    run = IngestRun.objects.create(kind=kind, arguments=arguments, host=socket.gethostname(), pid=os.getpid())
    recorder = RunRecorder(run)
    try:
        yield recorder
    except (KeyboardInterrupt, SystemExit):
        _finish_interrupted(run)
        raise
    except BaseException as exc:
        _finish(run, IngestRun.Status.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    _finish(run, IngestRun.Status.DONE, "")


def _finish_interrupted(run):
    try:
        _finish(run, IngestRun.Status.INTERRUPTED, "stopped before the end")
    except DatabaseError:
        # The stop cut a query short and left the connection unusable: say it on a new one (the old one's
        # advisory locks go with it).
        connection.close()
        _finish(run, IngestRun.Status.INTERRUPTED, "stopped before the end")


def _finish(run, status, error):
    run.status = status
    run.error = error
    run.finished_at = timezone.now()
    run.save()
