"""A real S3 API for tests: moto's standalone server in a subprocess on a free loopback port.

    with moto_server() as endpoint:          # "http://127.0.0.1:PORT"
        create_bucket(endpoint, "pictures")
        env = s3_env(endpoint, "pictures", prefix="media")   # for a subprocess running revimg

The server keeps everything in memory and checks no credentials; any key pair signs requests to it.
"""

import contextlib
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import boto3
import requests

from tests.app_server import free_loopback_port

START_DEADLINE = 30  # seconds: a bound for a broken start, not a measurement
STOP_DEADLINE = 10
START_TRIES = 3  # the free port may be taken by someone else between the probe and moto's bind
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class MotoServerError(RuntimeError):
    """moto's server did not start: not installed, or it exited, or it did not answer in time."""


@contextlib.contextmanager
def moto_server():
    """Start moto's S3 server on 127.0.0.1; yields its endpoint URL; stops it on leaving."""
    for attempt in range(START_TRIES):
        port = free_loopback_port()
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                endpoint = f"http://127.0.0.1:{port}"
                if _wait_until_answering(process, endpoint):
                    yield endpoint
                    return
                if attempt == START_TRIES - 1:
                    raise MotoServerError(f"moto's server did not start:\n{_tail(log)}")
            finally:
                _stop(process)


def create_bucket(endpoint, name):
    """Make the bucket name on the server at endpoint; returns a boto3 client for that server."""
    client = s3_client(endpoint)
    client.create_bucket(Bucket=name)
    return client


def s3_client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def s3_env(endpoint, bucket, prefix=""):
    """The environment a revimg subprocess needs to keep its pictures in bucket on the server at endpoint."""
    return {
        "REVIMG_MEDIA_STORAGE": "s3",
        "REVIMG_S3_BUCKET": bucket,
        "REVIMG_S3_PREFIX": prefix,
        "REVIMG_S3_ENDPOINT_URL": endpoint,
        "REVIMG_S3_REGION": REGION,
        **CREDENTIALS,
        # No lookup of an instance role at 169.254.169.254 should credentials ever go missing: loopback only.
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _wait_until_answering(process, endpoint):
    end = time.monotonic() + START_DEADLINE
    while time.monotonic() < end:
        if process.poll() is not None:
            return False
        try:
            requests.get(f"{endpoint}/moto-api/", timeout=2)
            return True
        except requests.ConnectionError:
            time.sleep(0.1)
    return False


def _tail(log):
    log.seek(0)
    return log.read().decode(errors="replace")[-3000:]


def _stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_DEADLINE)


@dataclass
class S3Bucket:
    """A test's bucket: where it is, and what it holds (read with the server's own client)."""

    endpoint: str
    name: str
    prefix: str
    client: object

    def key(self, name):
        return f"{self.prefix}/{name}" if self.prefix else name

    def object_keys(self):
        listing = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, name):
        return self.client.get_object(Bucket=self.name, Key=self.key(name))["Body"].read()

    def put(self, name, data):
        self.client.put_object(Bucket=self.name, Key=self.key(name), Body=data)
