"""What the client tells the code that runs it: one observer instead of a bag of callbacks.

The client knows when a request is about to go, when one went, and what budget an answer
reported; a run needs those to keep its quota, progress display and checkpoint. Observers
only record (no I/O, no awaiting: they run in the request path), with one exception that is
the point of ``admit``: refusing a request before it is paced, counted or sent.
"""

from __future__ import annotations

from typing import Protocol

from gh_collect.github.ratelimit import RateLimit

__all__ = ["ClientObserver"]


class ClientObserver(Protocol):
    """Hooks around each request; ``resource`` names the budget it spends (core, graphql...)."""

    def admit(self, resource: str) -> None:
        """A request (or a retry: each attempt is a new request) is about to be paced and
        sent. Raise (``QuotaReached``) to refuse it: then nothing is counted or sent."""

    def sent(self, resource: str, *, redirect: bool) -> None:
        """A request went out; ``redirect``: a followed hop, already under way, never refused."""

    def rate_seen(self, resource: str, rate: RateLimit) -> None:
        """An answer reported its budget; ``resource``: the bucket it was counted for (the
        answer's ``x-ratelimit-resource``, else its request's)."""
