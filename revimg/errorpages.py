"""Answers for failures outside a view's own refusals: the API's JSON error shape, a plain page for people.

Everything under /api/ answers {"error": {"code": ..., "message": ...}} whatever went wrong (an unknown
address, a crash, the database away); the pages answer a short "try again" page that needs nothing but a
template, so it renders while the database is down.
"""

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
# Seconds a client is asked to wait while the database is unreachable: about what a restart takes.
DATABASE_RETRY_AFTER = 5

TITLES = {
    400: "That request could not be read",
    403: "Not allowed",
    404: "Nothing here",
    413: "Too large",
    500: "Something went wrong",
    503: "Back in a moment",
}


def error_body(code, message):
    return {"error": {"code": code, "message": message}}


def wants_json(request):
    return request.path.startswith(API_PREFIX)


def error_response(request, status, code, message, retry_after=None):
    """The answer to a failure: JSON under /api/, the plain error page elsewhere."""
    if wants_json(request):
        response = JsonResponse(error_body(code, message), status=status)
    else:
        page = render_to_string("error.html", {"title": TITLES.get(status, "Error"), "message": message})
        response = HttpResponse(page, status=status)
    return with_retry_after(response, retry_after)


def with_retry_after(response, seconds):
    """response telling the client how long to wait (Retry-After) when there is a wait to tell."""
    if seconds is not None:
        response["Retry-After"] = str(seconds)
    return response


def database_unavailable(request):
    return error_response(
        request,
        503,
        "unavailable",
        "The catalog is unreachable for a moment. Please try again in a few seconds.",
        retry_after=DATABASE_RETRY_AFTER,
    )


def is_database_outage(exc):
    """A failure to reach the database (connection refused or lost), as opposed to a bad query."""
    return isinstance(exc, InterfaceError | OperationalError)


class DatabaseOutageMiddleware:
    """A view that fails because the database is unreachable answers 503 with Retry-After, not a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_database_outage(exception):
            return None
        logger.warning("database unreachable during %s: %s", request.path, exception)
        return database_unavailable(request)


def bad_request(request, exception):
    return error_response(request, 400, "bad_request", "The request could not be read.")


def permission_denied(request, exception):
    return error_response(request, 403, "forbidden", "You are not allowed to do that.")


def page_not_found(request, exception):
    return error_response(request, 404, "not_found", "Not found.")


def server_error(request):
    # Exceptions raised outside a view (in a middleware reaching the database: the session, the limits)
    # come here rather than to DatabaseOutageMiddleware.
    exc = sys.exc_info()[1]
    if exc is not None and is_database_outage(exc):
        return database_unavailable(request)
    return error_response(
        request, 500, "server_error", "Something went wrong on our side. Please try again in a moment."
    )
