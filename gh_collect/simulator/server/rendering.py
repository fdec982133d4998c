"""Replies as bytes: the reply record, GitHub's error shapes, ETags and page rendering.

``_Renderer`` swaps the model's API placeholder for the base URL a request used, once per
stored fragment: doing that on every page cost more than everything else a request does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import formatdate

from gh_collect.simulator.model import API_PLACEHOLDER_BYTES
from gh_collect.simulator.server.config import DOCS


@dataclass
class _Reply:
    """An answer before headers common to all answers are added."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"
    etag: str | None = None


class _Answer(Exception):
    """Raised deep in a handler to answer at once (404, 422, 301)."""

    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _json(status: int, payload: object, **headers: str) -> _Reply:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return _Reply(status, body, dict(headers))


def _error(status: int, message: str, docs: str = DOCS, **extra: object) -> _Reply:
    """GitHub's basic-error shape."""
    return _json(
        status, {"message": message, **extra, "documentation_url": docs, "status": str(status)}
    )


def _invalid(resource: str, name: str) -> _Answer:
    return _Answer(
        _error(
            422,
            "Validation Failed",
            errors=[{"resource": resource, "field": name, "code": "invalid"}],
        )
    )


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses weak comparison: ``W/`` is ignored on both sides."""
    mine = etag.removeprefix("W/")
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == mine:
            return True
    return False


def _digest(body: bytes) -> str:
    return hashlib.sha1(body, usedforsecurity=False).hexdigest()[:32]


def _http_date(ts: int) -> str:
    return formatdate(ts, usegmt=True)


class _Renderer:
    """Pages as bytes for one API base. Each stored fragment has the placeholder swapped for
    the base once, then is reused: swapping on every page cost more than everything else a
    request does (a 100-pull page holds ~15,000 URLs)."""

    def __init__(self, base: str) -> None:
        self._base = base.encode()
        self._objects: dict[int, tuple[bytes, ...]] = {}
        self._fragments: dict[int, bytes] = {}

    def one(self, fragments: tuple[bytes, ...]) -> bytes:
        return b"".join(self._rebased(fragments))

    def many(self, objects: Sequence[tuple[bytes, ...]]) -> bytes:
        parts: list[bytes] = [b"["]
        for index, fragments in enumerate(objects):
            if index:
                parts.append(b",")
            parts.extend(self._rebased(fragments))
        parts.append(b"]")
        return b"".join(parts)

    def _rebased(self, fragments: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """Keyed by identity: the model keeps every fragment tuple alive, so ids are stable."""
        done = self._objects.get(id(fragments))
        if done is None:
            done = tuple(self._fragment(fragment) for fragment in fragments)
            self._objects[id(fragments)] = done
        return done

    def _fragment(self, fragment: bytes) -> bytes:
        done = self._fragments.get(id(fragment))
        if done is None:
            done = fragment.replace(API_PLACEHOLDER_BYTES, self._base)
            self._fragments[id(fragment)] = done
        return done
