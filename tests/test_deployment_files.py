"""The deployment files, checked without a container engine: compose.yaml as Debian's docker-compose (1.29)
resolves it, the Dockerfile through hadolint, and the variables both name against the ones the app reads.
(`make test` installs both validators; in CI a missing one fails.) The commands they run are started for
real in tests/test_deployment_commands.py."""

import subprocess
from urllib.parse import urlsplit

import pytest

from tests.deployment import (
    ENV_EXAMPLE,
    ROOT,
    compose,
    compose_app_environment,
    compose_config,
    compose_demands,
    compose_names,
    compose_project,
    entrypoint_commands,
    env_example_lines,
    env_file_from_example,
    names_read_by_code,
)
from tests.services import program_or_skip

APP_SERVICES = ("web", "worker", "beat", "migrate")
# Read by a program other than revimg's code.
READ_ELSEWHERE = {
    "AWS_ACCESS_KEY_ID": "boto3 (and compose's MinIO, as its login)",
    "AWS_SECRET_ACCESS_KEY": "boto3 (and compose's MinIO, as its login)",
    "POSTGRES_PASSWORD": "compose.yaml (DATABASE_URL) and the pgvector image",
    "POSTGRES_USER": "the pgvector image",
    "POSTGRES_DB": "the pgvector image",
    "MINIO_ROOT_USER": "the MinIO image",
    "MINIO_ROOT_PASSWORD": "the MinIO image",
    "REVIMG_PUBLISH": "compose.yaml (web's published port)",
    "MINIO_PUBLISH": "compose.yaml (MinIO's published port)",
    "MINIO_CONSOLE_PUBLISH": "compose.yaml (MinIO's published console)",
    "HOSTNAME": "Docker sets it in each container (the worker's health check)",
}
# Being added to the settings by parallel work; the deployment files use them already. A group is let
# through only while the code reads none of it: once it reads one, it must read them all.
ADDED_ELSEWHERE = (
    {
        "REVIMG_MEDIA_STORAGE",
        "REVIMG_S3_BUCKET",
        "REVIMG_S3_PREFIX",
        "REVIMG_S3_ENDPOINT_URL",
        "REVIMG_S3_REGION",
        "REVIMG_S3_SIGNED_URLS",
        "REVIMG_S3_URL_EXPIRY_SECONDS",
        "REVIMG_S3_PUBLIC_URL",
    },
    {"REVIMG_DATABASE_REPLICA_URLS"},
    {
        "REVIMG_UPKEEP_SUSPECTS_HOURS",
        "REVIMG_UPKEEP_CLASS_STATS_HOURS",
        "REVIMG_UPKEEP_REEMBED_HOURS",
        "REVIMG_UPKEEP_RECRAWL_HOURS",
        "REVIMG_UPKEEP_SWEEP_HOURS",
    },
)
# What every deployment must set (given a value in compose.yaml or in .env), and why.
REQUIRED = {
    "DJANGO_SECRET_KEY": "else each container makes its own, and sessions differ between them",
    "DJANGO_ALLOWED_HOSTS": "else only localhost is answered",
    "DATABASE_URL": "else each container runs an embedded database of its own",
    "CELERY_BROKER_URL": "else tasks run in the web process",
    "REVIMG_CACHE_URL": "the search limits shared by every process",
    "REVIMG_CONTACT": "Wikimedia's User-Agent policy",
    "POSTGRES_PASSWORD": "the database's",
    "REVIMG_MEDIA_STORAGE": "where pictures go",
}


@pytest.fixture
def docker_compose():
    return program_or_skip("docker-compose", "make compose-validator: Debian's docker-compose")


@pytest.fixture
def project(tmp_path):
    return compose_project(tmp_path, env_file_from_example())


@pytest.fixture
def config(docker_compose, project):
    return compose_config(docker_compose, project)


def test_compose_accepts_the_file_with_an_env_made_from_the_example(docker_compose, project):
    for args in (["config", "--quiet"], ["--profile", "s3", "config", "--quiet"]):
        result = compose(docker_compose, project, *args)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "POSTGRES_PASSWORD"])
def test_compose_refuses_to_run_without_a_required_secret(docker_compose, tmp_path, missing):
    env = env_file_from_example({**{"DJANGO_SECRET_KEY": "k", "POSTGRES_PASSWORD": "p"}, missing: ""})
    result = compose(docker_compose, compose_project(tmp_path, env), "config", "--quiet")
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr


def test_the_app_starts_after_migrations_on_a_healthy_database_and_redis(config):
    services = config["services"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "db": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }
        assert services[name]["restart"] == "unless-stopped"
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"


def test_the_database_is_compose_postgres_with_pgvector_never_the_embedded_one(config):
    services = config["services"]
    db = services["db"]
    assert db["image"] == "pgvector/pgvector:pg16"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(volume.startswith("pgdata:/var/lib/postgresql/data") for volume in db["volumes"])
    for name in APP_SERVICES:
        url = urlsplit(services[name]["environment"]["DATABASE_URL"])
        assert (url.scheme, url.hostname, url.password) == ("postgres", "db", "a-test-password")
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_minio_comes_only_with_the_s3_profile_and_nothing_waits_for_it(config):
    services = config["services"]
    optional = {name for name, service in services.items() if service.get("profiles")}
    assert optional == {"minio", "minio-bucket"}
    assert all(services[name]["profiles"] == ["s3"] for name in optional)
    for name, service in services.items():
        if name not in optional:
            assert not optional & set(service.get("depends_on", {})), name


def test_the_app_services_run_commands_the_entrypoint_knows(config):
    commands = {name: config["services"][name]["command"] for name in APP_SERVICES}
    assert commands == {name: [name] for name in APP_SERVICES}
    assert entrypoint_commands() >= set(APP_SERVICES)


def test_the_dockerfile_passes_hadolint():
    hadolint = program_or_skip("hadolint", "pip install -r requirements-dev.txt")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _tolerated(read):
    return set().union(*(group for group in ADDED_ELSEWHERE if not group & read))


def test_every_variable_the_deployment_names_is_one_something_reads():
    read = names_read_by_code()
    named = set(env_example_lines()[0]) | compose_names()
    unknown = named - read - set(READ_ELSEWHERE) - _tolerated(read)
    assert not unknown, f"named in .env.example or compose.yaml, read by nothing: {sorted(unknown)}"


def test_every_required_variable_is_given_a_value():
    """Set in .env.example, set by compose.yaml for the app, or demanded by compose (${NAME:?...})."""
    values, commented = env_example_lines()
    in_env = {name for name, value in values.items() if value and name not in commented}
    missing = set(REQUIRED) - in_env - set(compose_app_environment()) - compose_demands()
    assert not missing, {name: REQUIRED[name] for name in missing}
    read = names_read_by_code()
    assert set(REQUIRED) <= read | set(READ_ELSEWHERE) | _tolerated(read)


def test_no_secret_is_committed_nor_baked_into_the_image():
    values, _ = env_example_lines()
    for secret in ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "AWS_SECRET_ACCESS_KEY"):
        assert values[secret] == "", secret
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()
    assert ENV_EXAMPLE.name not in (ROOT / ".gitignore").read_text()
