"""The WSGI application. gunicorn (gunicorn.conf.py) warms the image model in each worker before its
first request; importing this module starts nothing. Chunked request bodies are read (up to the upload
limit) before Django sees them: revimg.bodylimit."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revimg.settings")
application = get_wsgi_application()

from revimg.bodylimit import ChunkedBodyLimit  # noqa: E402 (reads the settings, once they are set up)

application = ChunkedBodyLimit(application)
