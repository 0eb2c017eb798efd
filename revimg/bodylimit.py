"""Request bodies larger than any picture we accept are refused before they are read.

A body that declares its length (Content-Length) is judged by it: the 413 goes out while the client is
still sending, and nothing of the body is read or spooled. A chunked body (no Content-Length) is
something Django never reads at all (it reads CONTENT_LENGTH bytes, and takes none when it is absent), so
ChunkedBodyLimit, around the WSGI application, reads it first, into a temporary file, up to the limit
and not a byte further, then hands Django the file with its length, or marks the request for the 413.

The 413 cannot ask the server to close the connection: WSGI forbids an application hop-by-hop headers
such as Connection (wsgiref asserts, gunicorn drops them). gunicorn's gevent workers (gunicorn.conf.py)
then read the unread rest into nothing before the next request on that connection: the sender's
bandwidth, a greenlet's wait, and no memory.
"""

import io
import tempfile

from django.conf import settings

from catalog.errors import Refusal

from .errorpages import error_response

# Room for the multipart framing and the form's other fields (k, the CSRF token) around the picture.
ALLOWANCE_BYTES = 2**20
# Set in the WSGI environ when a chunked body went past the limit (and was left unread).
OVER_LIMIT = "revimg.body_over_limit"
READ_SIZE = 64 * 1024


def max_body_bytes():
    return settings.REVIMG_MAX_UPLOAD_MB * 2**20 + ALLOWANCE_BYTES


def upload_too_large():
    """The refusal of a picture over REVIMG_MAX_UPLOAD_MB, wherever its size is found out."""
    return Refusal("too_large", f"The picture is larger than {settings.REVIMG_MAX_UPLOAD_MB} MB.", status=413)


def declared_length(environ):
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # as Django reads it: no body


def is_over_limit(environ):
    return environ.get(OVER_LIMIT, False) or declared_length(environ) > max_body_bytes()


class BodyLimitMiddleware:
    """Answers 413 for a body over the limit before any view or middleware after it reads the body.

    A view with a `show_refusal(request, refusal)` attribute answers it itself (the search page shows its
    form again with the notice); every other answer is revimg.errorpages' (JSON under /api/).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not is_over_limit(request.META):
            return None
        refusal = upload_too_large()
        show_refusal = getattr(view_func, "show_refusal", None)
        if show_refusal is not None:
            return show_refusal(request, refusal)
        return error_response(request, refusal.status, refusal.code, refusal.message)


def is_chunked(environ):
    # wsgi.input_terminated (gunicorn sets it): reading wsgi.input to its end stops at the body's end.
    return (
        "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        and not environ.get("CONTENT_LENGTH")
        and environ.get("wsgi.input_terminated", False)
    )


class ChunkedBodyLimit:
    """WSGI middleware: a chunked body becomes a file of known length, or, past the limit, an unread one."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        if is_chunked(environ):
            spool_chunked_body(environ, max_body_bytes())
        return self.application(environ, start_response)


def spool_chunked_body(environ, limit):
    """Read wsgi.input into a temporary file (in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE), stopping one
    byte past limit; environ then describes that file, or an empty body marked OVER_LIMIT."""
    # Not a with block: the file outlives this function as wsgi.input, and goes (deleted) with the environ.
    spooled = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)  # noqa: SIM115
    received = _copy_at_most(environ["wsgi.input"], spooled, limit + 1)
    if received > limit:
        spooled.close()
        environ.update({OVER_LIMIT: True, "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO()})
        return
    spooled.seek(0)
    environ.update({"CONTENT_LENGTH": str(received), "wsgi.input": spooled})


def _copy_at_most(source, target, most):
    copied = 0
    while copied < most:
        chunk = source.read(min(READ_SIZE, most - copied))
        if not chunk:
            break
        target.write(chunk)
        copied += len(chunk)
    return copied
