"""Persistent conditional requests: the ETag of every list page, kept with the dataset.

GitHub does not charge a ``304 Not Modified`` answer to a request carrying the page's ETag,
so a refresh that re-reads an unchanged org costs next to nothing. Validators are kept in an
append-only ``validators.jsonl`` beside the checkpoint, written in the same synchronous step
as the page's data and cut back to the offset of the last checkpoint save on resume, exactly
like the data files. So a validator never outlives the data it vouches for: a crash can
never leave an ETag that turns a page whose records were lost into a 304.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from gh_collect import codec
from gh_collect.durable.envelope import encode_lines, read_data
from gh_collect.durable.storage import JsonlSink, RawStore


@dataclass(frozen=True)
class Validator:
    """What a later request needs to ask "changed since?" and to walk on if not."""

    etag: str | None
    last_modified: str | None
    next_url: str | None
    # Where a 301 said the page lives now (a renamed or transferred repo): asked directly.
    location: str | None = None
    # A 304 for this page tells a walk all it needs, even with no ``next`` link: the walk
    # stopped here past the window, or the page was not full (a new item would land ON it
    # and change its body). A full last page is re-read in full instead: its ETag covers the
    # body, not the Link header, so a page added behind it (exactly 100 items, then a
    # 101st) would stay unseen. False for validators of 0.1.0: re-read once, then known.
    settled: bool = False

    @property
    def may_answer_304(self) -> bool:
        """Whether a "changed since?" request for this page tells all a walk needs."""
        return self.next_url is not None or self.settled


class ValidatorStore:
    """URL -> latest Validator, backed by an append-only file the checkpoint bounds."""

    def __init__(self, path: Path, offset: int, store: RawStore) -> None:
        self._known = _read(path, offset)
        self._sink: JsonlSink = store.open(path, offset)

    @property
    def offset(self) -> int:
        return self._sink.offset

    def get(self, url: str) -> Validator | None:
        return self._known.get(url)

    def remember(
        self,
        url: str,
        etag: str | None,
        last_modified: str | None,
        next_url: str | None,
        location: str | None = None,
        *,
        settled: bool = False,
    ) -> int:
        """Record a page's validator (if it has one and it changed); return the file offset."""
        validator = Validator(etag, last_modified, next_url, location, settled)
        if (etag or last_modified) and self._known.get(url) != validator:
            self._known[url] = validator
            self._sink.append(encode_lines([{"url": url, **asdict(validator)}]))
        return self._sink.offset


def _read(path: Path, offset: int) -> dict[str, Validator]:
    if not path.exists() or offset == 0:
        return {}
    with path.open("rb") as handle:
        data = handle.read(offset)
    known: dict[str, Validator] = {}
    for line in data.splitlines():
        record = codec.loads(line)
        known[record["url"]] = Validator(
            record.get("etag"), record.get("last_modified"), record.get("next_url"),
            record.get("location"), bool(record.get("settled", False)),
        )  # fmt: skip
    return known


def request_key(url: str, params: Mapping[str, str | int] | None) -> str:
    """The validator key of a request: its URL with the query it was sent with."""
    if not params:
        return url
    return f"{url}?{urlencode(sorted((k, str(v)) for k, v in params.items()))}"


class KnownVersions:
    """The version of each object a unit's file already holds, read on first need.

    Every walk appends only objects whose version is new: a refresh does not write an
    unchanged object of a changed page again, and a newest-first walk does not write twice
    an item that a page shift or a catch-up pass shows again. Raw JSONL holds each version of
    an object once per unit. ``key`` and ``version`` name the fields (the endpoint's
    declaration: ``id`` and ``updated_at``; a commit is its ``sha`` and has no version, so a
    sha already held is never written again).
    """

    def __init__(
        self, path: Path, offset: int, key: str = "id", version: str | None = "updated_at"
    ) -> None:
        self._path, self._offset = path, offset
        self._key, self._version = key, version
        self._versions: dict[Any, Any] | None = None

    def changed(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        versions = self._load()
        unseen = object()  # an object never seen is new, even with no version
        fresh = [i for i in items if versions.get(self._key_of(i), unseen) != self._version_of(i)]
        versions.update((self._key_of(item), self._version_of(item)) for item in fresh)
        return fresh

    def _load(self) -> dict[Any, Any]:
        if self._versions is None:
            self._versions = {}
            if self._path.exists():
                for data in read_data(self._path, self._offset):
                    self._versions[self._key_of(data)] = self._version_of(data)
        return self._versions

    def _version_of(self, item: dict[str, Any]) -> Any:
        return None if self._version is None else item.get(self._version)

    def _key_of(self, item: dict[str, Any]) -> Any:
        """An object's key as a dict key; a mistyped (unhashable) key from the server is
        keyed by its JSON text, so it is compared, never a crash; an object without one is
        keyed by its whole JSON text (the same keyless object is written once, and the
        export counts it as dropped)."""
        ident = item.get(self._key)
        if ident is None:
            return ("keyless", codec.dumps_line(item))
        try:
            hash(ident)
        except TypeError:
            return codec.dumps_line(ident)
        return ident
