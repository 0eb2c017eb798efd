"""What the crawl commands share: a progress bar on a terminal, and their common options."""

import sys

from tqdm import tqdm


def progress_bar(enabled=True):
    """A progress(items, label) wrapper showing a bar on stderr when it is a terminal, else None."""
    if not enabled or not sys.stderr.isatty():
        return None
    return lambda items, label=None: tqdm(items, desc=label, file=sys.stderr, dynamic_ncols=True)


def describe(kind, recorder):
    """One summary line for a recorded run, and its first failures."""
    run = recorder.run
    lines = [f"{kind}: {recorder.summary()}"]
    lines += [f"  failed: {what}: {why}" for what, why in run.failures[:10]]
    if run.failed > 10:
        lines.append(f"  ... and {run.failed - 10} more failures (see IngestRun #{run.id} in the admin)")
    return lines
