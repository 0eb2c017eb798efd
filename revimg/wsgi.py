"""The WSGI application. gunicorn (gunicorn.conf.py) warms the image model in each worker before its
first request; importing this module starts nothing."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revimg.settings")
application = get_wsgi_application()
