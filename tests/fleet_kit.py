"""Real parts for the fleet's tests: a redis-server and an S3 endpoint (moto), both on
127.0.0.1 only, started and stopped by fixtures; nothing reaches outside the machine."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REDIS = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(
    REDIS is None and not os.environ.get("CI"),
    reason="redis-server is not installed (apt-get install redis-server; .ci/run does)",
)
BUCKET = "gh-collect-fleet"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """One redis-server on 127.0.0.1; ``restart`` keeps its port (and, with AOF, its data)."""

    folder: Path
    port: int
    aof: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS is not None, "redis-server is not installed"
        args = [REDIS, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        args += (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.aof
            else ["--appendonly", "no"]
        )
        args += ["--dir", str(self.folder)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self, *, kill: bool = False) -> None:
        if self.process is not None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if REDIS is None:
        pytest.skip("redis-server is not installed")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder, free_port())
    server.start()
    yield server
    server.stop(kill=True)


@pytest.fixture
def redis_aof(tmp_path: Path) -> Iterator[RedisServer]:
    if REDIS is None:
        pytest.skip("redis-server is not installed")
    folder = tmp_path / "redis-aof"
    folder.mkdir()
    server = RedisServer(folder, free_port(), aof=True)
    server.start()
    yield server
    server.stop(kill=True)


@dataclass
class S3:
    endpoint: str
    bucket: str

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[S3]:
    """moto's S3 server (which enforces ``If-None-Match: *``) on 127.0.0.1, one bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3 = S3(f"http://127.0.0.1:{port}", BUCKET)
    saved = {key: os.environ.get(key) for key in s3.env()}
    os.environ.update(s3.env())
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    try:
        yield s3
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()
