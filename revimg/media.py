"""Serving /media/: catalog files are content-addressed, so they are sent as immutable, with validators,
single byte ranges, and the app server's sendfile (or a front server's X-Accel-Redirect).

Only from the local folder: pictures in an S3 bucket are fetched from the bucket's own URLs."""

import io
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotModified
from django.utils.http import http_date, parse_etags, parse_http_date_safe
from django.views.decorators.http import require_safe

from catalog import objectstore
from catalog.mediarefs import is_plain_name
from revimg.mediastorage import IMMUTABLE

# catalog.models.image_upload_path: images/<first two hex digits>/<SHA-256 of the file's bytes>.<ext>.
# Thumbnails (thumbs/...) are named by their original's hash, not their own, so they do not qualify.
CONTENT_ADDRESSED = re.compile(r"images/([0-9a-f]{2})/(\1[0-9a-f]{62})\.[a-z0-9]+")

# bytes=a-b, bytes=a- or bytes=-n. Nineteen digits cover any file; longer numbers are treated as
# malformed (so the whole file is sent) instead of reaching int()'s digit limit.
SINGLE_RANGE = re.compile(r"\s*bytes\s*=\s*([0-9]{0,19})\s*-\s*([0-9]{0,19})\s*", re.IGNORECASE)


@dataclass(frozen=True)
class MediaFile:
    path: Path  # on disk, inside MEDIA_ROOT
    name: str  # as requested, relative to MEDIA_ROOT
    size: int
    mtime: float
    etag: str


class Unsatisfiable(Exception):
    """The Range asks for bytes the file does not have: 416."""


@require_safe
def media(request, path):
    if objectstore.is_object_storage():
        # Pictures in a bucket are fetched from its own URLs (image.file.url), never through the app.
        raise Http404("no such file")
    media_file = find_media_file(path)
    if not_modified(request, media_file):
        return with_validators(HttpResponseNotModified(), media_file)
    if settings.REVIMG_MEDIA_ACCEL_REDIRECT:
        return accel_redirect(media_file, settings.REVIMG_MEDIA_ACCEL_REDIRECT)
    if request.method == "HEAD":
        # RFC 9110 14.2: range handling is defined for GET only, so HEAD describes the whole file.
        return headers_only(media_file)
    try:
        byte_range = requested_range(request, media_file)
    except Unsatisfiable:
        return range_not_satisfiable(media_file)
    return file_response(media_file, byte_range)


def find_media_file(path):
    """The regular file at path under MEDIA_ROOT, or Http404 for anything outside it or not a file."""
    if not is_plain_name(path):
        raise Http404("no such file")
    root = Path(settings.MEDIA_ROOT).resolve()
    try:
        # resolve() follows symlinks, so one pointing outside the root fails the containment check.
        file_path = (root / path).resolve()
        if not file_path.is_relative_to(root) or not file_path.is_file():
            raise Http404("no such file")
        stat = file_path.stat()
    except OSError:
        # A name too long, a file removed meanwhile: still nothing to serve.
        raise Http404("no such file") from None
    return MediaFile(file_path, path, stat.st_size, stat.st_mtime, make_etag(path, stat))


def make_etag(name, stat):
    """A strong validator without reading the file: its hash when the name is one, else size and mtime."""
    match = CONTENT_ADDRESSED.fullmatch(name)
    if match:
        return f'"sha256-{match.group(2)}"'
    return f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'


def not_modified(request, media_file):
    # RFC 9110 13.2.2: If-None-Match decides alone when present; If-Modified-Since only without it.
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        return if_none_match.strip() == "*" or any(
            weak_equal(tag, media_file.etag) for tag in parse_etags(if_none_match)
        )
    since = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
    return since is not None and int(media_file.mtime) <= since


def weak_equal(tag, etag):
    # If-None-Match compares weakly (RFC 9110 8.8.3.2): W/"x" matches "x".
    return tag.removeprefix("W/") == etag


def with_validators(response, media_file):
    response["Cache-Control"] = IMMUTABLE
    response["ETag"] = media_file.etag
    response["Last-Modified"] = http_date(media_file.mtime)
    return response


def content_type(name):
    mime, encoding = mimetypes.guess_type(name)
    # A compressed file is sent as the bytes it is, not as what it would decompress to (as Django does).
    return "application/octet-stream" if encoding or not mime else mime


def accel_redirect(media_file, prefix):
    """An empty answer telling the front server which file to send; it does ranges itself."""
    response = with_validators(HttpResponse(content_type=content_type(media_file.name)), media_file)
    response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(media_file.name)
    return response


def headers_only(media_file):
    response = with_validators(HttpResponse(content_type=content_type(media_file.name)), media_file)
    response["Content-Length"] = media_file.size
    response["Accept-Ranges"] = "bytes"
    return response


def requested_range(request, media_file):
    """(start, stop) of the single range to send, or None for the whole file; raises Unsatisfiable."""
    header = request.headers.get("Range")
    if header is None or not if_range_matches(request, media_file):
        return None
    match = SINGLE_RANGE.fullmatch(header)
    if not match:
        # Multiple ranges or a malformed header: RFC 9110 14.2 lets us ignore it and send everything.
        return None
    return byte_span(match.group(1), match.group(2), media_file.size)


def if_range_matches(request, media_file):
    # Only an ETag is honoured (strong comparison, RFC 9110 13.1.5); a date or another tag means the
    # client's partial copy may be stale, so it gets the whole file.
    if_range = request.headers.get("If-Range")
    return if_range is None or if_range.strip() == media_file.etag


def byte_span(first, last, size):
    if not first and not last:
        return None  # "bytes=-": malformed
    if not first:
        # Suffix form bytes=-n: the last n bytes.
        if int(last) == 0 or size == 0:
            raise Unsatisfiable
        return max(size - int(last), 0), size
    start = int(first)
    if last and int(last) < start:
        return None  # a-b with b < a is invalid, hence ignored
    if start >= size:
        raise Unsatisfiable
    stop = size if not last else min(int(last) + 1, size)
    return start, stop


def range_not_satisfiable(media_file):
    # No Cache-Control: a cache that ignores Range must not keep this as the answer for the URL.
    response = HttpResponse(status=416)
    response["Content-Range"] = f"bytes */{media_file.size}"
    return response


def file_response(media_file, byte_range):
    # Unbuffered: seek() and tell() then move the descriptor itself, which is where gunicorn's sendfile
    # starts (os.lseek(fd, 0, SEEK_CUR)).
    file = open(media_file.path, "rb", buffering=0)  # noqa: SIM115 -- FileResponse closes it
    if byte_range is None:
        response = FileResponse(file, content_type=content_type(media_file.name))
    else:
        start, stop = byte_range
        response = FileResponse(
            RangeReader(file, start, stop), status=206, content_type=content_type(media_file.name)
        )
        response["Content-Range"] = f"bytes {start}-{stop - 1}/{media_file.size}"
        # gunicorn sends exactly Content-Length bytes from the descriptor's offset.
        response["Content-Length"] = stop - start
    response["Accept-Ranges"] = "bytes"
    # FileResponse names the file inline; the URL already names it, and a range should not differ.
    response.headers.pop("Content-Disposition", None)
    return with_validators(response, media_file)


class RangeReader:
    """The bytes [start, stop) of an open file, for FileResponse.

    Positions (tell, seek) are the file's own offsets, not offsets within the range: gunicorn's sendfile
    starts at the descriptor's offset and socket.sendfile seeks back to a file offset afterwards. read()
    stops at stop, for servers without sendfile and Django's own iteration; seek(0, SEEK_END) goes to
    stop, so FileResponse.set_headers measures the range's length.
    """

    def __init__(self, file, start, stop):
        self.file = file
        self.start = start
        self.stop = stop
        file.seek(start)

    def fileno(self):
        return self.file.fileno()

    def read(self, size=-1):
        remaining = max(self.stop - self.file.tell(), 0)
        if size is None or size < 0 or size > remaining:
            size = remaining
        return self.file.read(size)

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.file.tell(), io.SEEK_END: self.stop}[whence]
        return self.file.seek(min(max(base + offset, self.start), self.stop))

    def tell(self):
        return self.file.tell()

    def close(self):
        self.file.close()
