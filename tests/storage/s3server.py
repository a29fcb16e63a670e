"""A real S3-protocol server for the tests: moto's server (in memory) in its own process, on a
free port, for the whole session.  Tests talk to it over HTTP exactly as to any S3-compatible
service; this module also lists what is in a bucket, to prove what a test left behind."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest

from tests.helpers import free_port

ACCESS_KEY = "moto-access-key"
# Any value works with moto; a recognisable one lets tests prove it is never printed.
SECRET_KEY = "moto-SECRET-never-printed-5f0c"
REGION = "us-east-1"


@dataclass
class MotoS3:
    endpoint: str

    def client(self) -> Any:
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )  # fmt: skip

    def new_bucket(self) -> str:
        name = f"t-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def uploads(self, bucket: str, prefix: str = "") -> list[str]:
        """Unfinished multipart uploads: parts stored that no object shows."""
        r = self.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix)
        return sorted(u["Key"] for u in r.get("Uploads", []))

    def everything(self, bucket: str, prefix: str = "") -> list[str]:
        """All a bucket holds under a prefix: objects, and unfinished uploads marked as such."""
        return self.keys(bucket, prefix) + [
            "(unfinished upload) " + k for k in self.uploads(bucket, prefix)
        ]


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(endpoint + "/moto-api/", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield MotoS3(endpoint)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
