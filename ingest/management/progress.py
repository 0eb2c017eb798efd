"""What the crawl commands share besides the progress bar (catalog.progress): their summary lines, and
SIGTERM handled as Ctrl-C."""

import functools
import signal
import threading


def describe(kind, recorder):
    """One summary line for a recorded run, and its first failures."""
    run = recorder.run
    lines = [f"{kind}: {recorder.summary()}"]
    lines += [f"  failed: {what}: {why}" for what, why in run.failures[:10]]
    if run.failed > 10:
        lines.append(f"  ... and {run.failed - 10} more failures (see IngestRun #{run.id} in the admin)")
    return lines


def interrupt_on_sigterm(handle):
    """For a command's handle(): SIGTERM (kill, docker stop, systemd) stops it as Ctrl-C does, so its run is
    recorded as interrupted and a file being written is removed, where Python's default would end the
    process on the spot. The previous handler comes back afterwards (call_command inside another program)."""

    @functools.wraps(handle)
    def handle_interruptibly(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():  # only there can handlers be set
            return handle(*args, **kwargs)
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            return handle(*args, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, previous)

    return handle_interruptibly
