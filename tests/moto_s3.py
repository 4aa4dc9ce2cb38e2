"""moto's standalone S3 server on loopback for tests of s3:// data roots: its own process group, stopped with it
however the test ends, and the AWS variables (endpoint, throwaway keys) set only while it runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import s3fs

from tests.deploy.prefect_procs import free_port


@contextmanager
def moto_s3(log: Path, bucket: str) -> Iterator[str]:
    """moto_server on 127.0.0.1 with `bucket` made; yields its endpoint, which s3fs (and botocore) find by
    AWS_ENDPOINT_URL. The server's request log goes to `log`."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.time() + 60
        while True:
            try:
                httpx.get(endpoint, timeout=2)
                break
            except httpx.HTTPError:
                if time.time() > deadline or server.poll() is not None:
                    pytest.fail("moto_server did not start:\n" + log.read_text()[-2000:])
                time.sleep(0.3)
        with pytest.MonkeyPatch.context() as env:
            for name, value in {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": endpoint,
            }.items():
                env.setenv(name, value)
            s3fs.S3FileSystem.clear_instance_cache()  # no cached filesystem from another endpoint
            s3fs.S3FileSystem().mkdir(bucket)
            yield endpoint
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
