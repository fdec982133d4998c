"""Where a fleet's dataset lives: a local folder or an S3 bucket, behind five operations.

An object store has no append and no rename, so everything a fleet writes is an immutable
object, and the one operation the protocol rests on is ``create_once``: write an object only
if none exists under its key, atomically (``O_EXCL`` on a local disk, ``If-None-Match: *``
on S3). Keys are ``/``-separated and relative to the store's root (``output.root``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gh_collect.errors import ConfigError, StorageError

__all__ = ["LocalStore", "ObjectStore", "S3Store", "is_object_store_uri", "open_store"]

_URI = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*):/+(?P<rest>.*)$")


class ObjectStore(Protocol):
    """The operations a fleet needs; each raises StorageError with a one-line message."""

    @property
    def uri(self) -> str: ...

    def put(self, key: str, data: bytes) -> None: ...
    def create_once(self, key: str, data: bytes) -> bool: ...
    def get(self, key: str) -> bytes | None: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...


def is_object_store_uri(root: str | Path) -> bool:
    """``s3://...`` or ``gs://...`` (a ``Path`` has folded the ``//`` into one ``/``)."""
    match = _URI.match(str(root))
    return match is not None and match["scheme"] != "file"


def store_uri(root: str | Path) -> str:
    """The URI as the user wrote it, even after ``Path`` folded its ``//``."""
    match = _URI.match(str(root))
    if match is None:
        return str(root)
    return f"{match['scheme']}://{match['rest']}"


def open_store(root: str | Path, *, endpoint_url: str | None = None) -> ObjectStore:
    """The store for ``output.root``: a local folder, ``s3://bucket/prefix``; ``gs://`` is
    refused in this release (GCS's ``ifGenerationMatch=0`` is not wired yet)."""
    match = _URI.match(str(root))
    if match is None or match["scheme"] == "file":
        return LocalStore(Path(match["rest"] if match else root))
    scheme, rest = match["scheme"], match["rest"]
    if scheme == "s3":
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ConfigError(f"output.root {store_uri(root)}: no bucket name")
        return S3Store(bucket, prefix.strip("/"), endpoint_url=endpoint_url)
    raise ConfigError(
        f"output.root {store_uri(root)}: {scheme}:// is not supported yet; use s3://BUCKET/PREFIX "
        "or a local folder"
    )


@dataclass
class LocalStore:
    """A folder; ``create_once`` is ``O_CREAT | O_EXCL`` and every write is fsynced."""

    root: Path

    @property
    def uri(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        temp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        _local(key, lambda: path.parent.mkdir(parents=True, exist_ok=True))
        _local(key, lambda: _write_synced(temp, data, os.O_TRUNC))
        _local(key, lambda: temp.replace(path))

    def create_once(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        _local(key, lambda: path.parent.mkdir(parents=True, exist_ok=True))
        try:
            _write_synced(path, data, os.O_EXCL)
        except FileExistsError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
        return True

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {self._path(key)}: {exc.strerror or exc}") from None

    def list(self, prefix: str) -> list[str]:
        """Every key that starts with ``prefix``, as S3 lists them."""
        folder = self._path(prefix.rpartition("/")[0]) if "/" in prefix else self.root
        if not folder.is_dir():
            return []
        keys = (path.relative_to(self.root).as_posix() for path in _files(folder))
        return sorted(
            k for k in keys if k.startswith(prefix) and ".tmp" not in k.rpartition("/")[2]
        )

    def delete(self, key: str) -> None:
        _local(key, lambda: self._path(key).unlink(missing_ok=True))


def _files(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file():
            yield path


def _write_synced(path: Path, data: bytes, mode: int) -> None:
    """A short-lived descriptor: every byte written and fsynced, or an exception."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | mode, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _local(key: str, action: Any) -> None:
    try:
        action()
    except OSError as exc:
        raise StorageError(f"cannot write {key}: {exc.strerror or exc}") from None


class S3Store:
    """A bucket and prefix through boto3: credentials and endpoint the usual way (the AWS
    variables, ``AWS_ENDPOINT_URL``, instance roles); ``create_once`` is ``If-None-Match``."""

    def __init__(self, bucket: str, prefix: str, *, endpoint_url: str | None = None) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket, self.prefix = bucket, prefix
        self.uri = f"s3://{bucket}/{prefix}".rstrip("/")
        retries = BotoConfig(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5)
        self._client = boto3.client("s3", endpoint_url=endpoint_url, config=retries)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        self._call(
            key, lambda: self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        )

    def create_once(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*"
            )
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (409, 412):  # 412: it exists; 409: a concurrent create is under way
                return False
            raise self._error(key, exc) from None
        except Exception as exc:
            raise self._error(key, exc) from None
        return True

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            body: bytes = answer["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._error(key, exc) from None
        except Exception as exc:
            raise self._error(key, exc) from None
        return body

    def list(self, prefix: str) -> list[str]:
        full = self._key(prefix)
        keys: list[str] = []

        def walk() -> None:
            pages = self._client.get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=full):
                keys.extend(item["Key"] for item in page.get("Contents", []))

        self._call(prefix, walk)
        cut = len(self.prefix) + 1 if self.prefix else 0
        return sorted(key[cut:] for key in keys)

    def delete(self, key: str) -> None:
        self._call(key, lambda: self._client.delete_object(Bucket=self.bucket, Key=self._key(key)))

    def _call(self, key: str, action: Any) -> None:
        try:
            action()
        except Exception as exc:
            raise self._error(key, exc) from None

    def _error(self, key: str, exc: Exception) -> StorageError:
        """One line, from the error's class and code (botocore's text never holds a secret,
        but the request's headers are not ours to repeat)."""
        code = (
            getattr(exc, "response", {}).get("Error", {}).get("Code")
            if hasattr(exc, "response")
            else None
        )
        what = code or type(exc).__name__
        return StorageError(
            f"S3 {self.uri}/{key}: {what}; check the bucket, AWS credentials and endpoint"
        )
