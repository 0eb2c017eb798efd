"""The progress bar every management command shows, in the bottom layer so catalog's commands and ingest's
alike reach it.

A progress is a function progress(items, label=None) that returns an iterable over items. Functions that
take one default to no_progress, so they always write progress(items), never a test for None.
"""

import sys

from tqdm import tqdm


def no_progress(items, label=None):
    """The identity progress: the items themselves, nothing shown."""
    return items


def progress_bar(enabled=True, unit="it"):
    """A bar on stderr when it is a terminal and enabled, else no_progress."""
    if not enabled or not sys.stderr.isatty():
        return no_progress
    return lambda items, label=None: tqdm(items, desc=label, unit=unit, file=sys.stderr, dynamic_ncols=True)
