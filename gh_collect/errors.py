"""Every error gh_collect raises, in one hierarchy.

Each error knows the exit code SPEC gives it and carries a one-line message that says what
happened, where, and what to do. The CLI prints ``str(error)`` and exits with
``error.exit_code``; nothing else is needed to report an error to a user.

Messages never contain the token: they are built from URLs without credentials, paths and
settings, never from request headers.

    GhCollectError                      exit 1
    ├── UsageError                      exit 2   bad command-line usage (unknown --from-repo, ...)
    ├── ConfigError                     exit 2   unreadable/invalid config, missing token variable
    ├── CheckpointError                 exit 2
    │   ├── CorruptCheckpointError               not JSON, truncated, invalid, future version
    │   ├── DigestMismatchError                  config changed since the checkpoint was made
    │   └── RawDataMismatchError                 a raw file shorter than the checkpoint records
    ├── LockHeldError                   exit 3   another run holds this dataset's lock
    ├── StorageError                    exit 1   the output folder cannot be written (ENOSPC...)
    ├── DataError                       exit 1   a record that cannot be exported
    ├── ExportRefused                   exit 2   no dataset, or raw files short of the checkpoint
    ├── ReportRefused                   exit 2   no curated dataset to report on, or unreadable
    ├── RateLimitExit                   exit 75  stopped on the rate limit (--on-rate-limit exit)
    ├── QueueUnavailableError           exit 75  Redis (--queue) unreachable: run again when back
    │   └── QueueLostError                       Redis lost the harvest's plan: plan again
    ├── LeaseLost                       exit 1   a worker's unit has another holder (internal)
    ├── Interrupted                     exit 130 / 143
    └── ApiError                        exit 1   an HTTP answer we cannot use as data
        ├── RetriableApiError                    5xx, timeouts, resets, malformed bodies: retried
        │   ├── SlowPageError                    502/504, read timeout: a list page asks fewer
        │   └── CredentialRefused                a pool's credential refused: another one tries
        ├── RateLimitError                       primary budget spent: wait for reset
        ├── SecondaryRateLimitError              secondary limit: wait retry-after
        ├── SkippableApiError                    403/404/409/410/451 on a repo: unit FAILED, run
        │                                        goes on (unless the endpoint declares the status
        │                                        as zero records: ``Endpoint.empty_statuses``)
        └── FatalApiError                        stops the run
            ├── BadCredentialsError     exit 2   401
            ├── SsoRequiredError        exit 2   403 with X-GitHub-SSO: the token is not authorised
            └── GraphQLQueryError                GitHub refused a GraphQL query as written
"""

from __future__ import annotations

import signal


class GhCollectError(Exception):
    """Root of every error gh_collect raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(GhCollectError):
    exit_code = 2


class ConfigError(GhCollectError):
    exit_code = 2


class CheckpointError(GhCollectError):
    exit_code = 2


class CorruptCheckpointError(CheckpointError):
    pass


class DigestMismatchError(CheckpointError):
    pass


class RawDataMismatchError(CheckpointError):
    """A raw file holds less than the checkpoint counts: only a human can mend it."""


class LockHeldError(GhCollectError):
    exit_code = 3


class StorageError(GhCollectError):
    exit_code = 1


class DataError(GhCollectError):
    exit_code = 1


class ExportRefused(GhCollectError):
    """The raw files do not hold what the checkpoint says: exporting would publish less."""

    exit_code = 2


class ReportRefused(GhCollectError):
    """No curated table to report on, or one that cannot be read: a human must export first."""

    exit_code = 2


class RateLimitExit(GhCollectError):
    exit_code = 75


class QueueUnavailableError(GhCollectError):
    """The queue's Redis cannot be reached or answered wrongly; what was committed to the
    store is kept, and the same command continues once Redis is back."""

    exit_code = 75


class QueueLostError(QueueUnavailableError):
    """The queue holds no plan any more (Redis lost without persistence)."""


class LeaseLost(GhCollectError):
    """This worker no longer holds a unit (its fence is stale, or another holder committed
    first): the worker drops the unit; never shown to users as a failure."""


class Interrupted(GhCollectError):
    """A signal stopped the run after the checkpoint was saved."""

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}: checkpoint saved, run the same command to resume")
        self.signum = signum
        self.exit_code = 128 + signum


class ApiError(GhCollectError):
    """An HTTP answer that is not usable data. ``url`` never carries credentials."""

    exit_code = 1

    def __init__(self, message: str, *, status: int | None = None, url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class RetriableApiError(ApiError):
    pass


class SlowPageError(RetriableApiError):
    """GitHub cut the request short (502, 504, no answer in time), as it does with heavy
    list pages: a walk asks again with fewer items per page before it retries or fails."""


class CredentialRefused(RetriableApiError):
    """One credential of a pool was refused (an org's SAML SSO, an installation token that
    expired early): the request is tried again with another, or with a fresh token."""


class RateLimitError(ApiError):
    """The primary budget is spent until ``reset_at`` (epoch seconds)."""

    def __init__(self, message: str, *, reset_at: float, status: int | None = None, url: str = ""):
        super().__init__(message, status=status, url=url)
        self.reset_at = reset_at


class SecondaryRateLimitError(ApiError):
    """GitHub asked us to slow down; wait at least ``retry_after`` seconds."""

    def __init__(
        self, message: str, *, retry_after: float, status: int | None = None, url: str = ""
    ):
        super().__init__(message, status=status, url=url)
        self.retry_after = retry_after


class SkippableApiError(ApiError):
    """This repo x endpoint cannot be collected (gone, forbidden, blocked); others can."""


class PaginationLoop(SkippableApiError):
    """The server linked back to a page already read in this walk: following it would loop."""


class FatalApiError(ApiError):
    pass


class BadCredentialsError(FatalApiError):
    exit_code = 2


class SsoRequiredError(FatalApiError):
    """The org enforces SAML SSO and the token is not authorised for it: every request to
    the org would fail the same way, and only a human (at ``authorize_url``) can fix it."""

    exit_code = 2

    def __init__(
        self, message: str, *, org: str, authorize_url: str | None, status: int | None, url: str
    ) -> None:
        super().__init__(message, status=status, url=url)
        self.org = org
        self.authorize_url = authorize_url


class GraphQLQueryError(FatalApiError):
    """GitHub refused a GraphQL query as written (a field the schema lacks, a connection
    without ``first``, over 500,000 nodes): every later query would be refused alike, so
    the run stops; it is a bug of gh_collect or a change of GitHub's schema."""
