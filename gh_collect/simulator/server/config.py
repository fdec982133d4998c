"""What shapes a simulated GitHub: ``SimulatorConfig`` and the constants GitHub documents.

Defaults are GitHub's documented limits (5000 requests an hour, 900 per minute per endpoint,
100 concurrent, 90 s of server time per minute); tests and benchmarks override them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gh_collect.simulator.faults import validate_faults, validate_slow_pages
from gh_collect.simulator.model import parse_time
from gh_collect.simulator.model.reviews import MANY_REVIEWS_LIMIT

DOCS = "https://docs.github.com/rest"
API_VERSIONS = ("2022-11-28", "2026-03-10")
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
    "again. If you reach out to GitHub Support for help, please include the request ID {rid}."
)
DEEP_PAGE_MESSAGE = (
    "Pagination with the page parameter is not supported for large datasets, please use "
    "cursor based pagination (after/before)"
)
MAX_CURSOR_PAGE = 10
WINDOW_S = 60.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class SimulatedApp:
    """A GitHub App the simulator knows (``identities``, ``apps``): JWTs signed with the key
    matching ``public_key`` (PEM) and naming ``app_id`` or ``client_id`` are accepted.

    ``installations``: org -> installation id (None: installed on every org served, ids
    from 1001). Each installation has its own budget of ``rate_limit`` requests a window;
    its tokens expire ``token_ttl_s`` after minting (GitHub: an hour; tests shorten it),
    by the simulated clock that stamps ``Date``.
    """

    public_key: str
    app_id: int = 1
    client_id: str = "Iv23liSimulatedApp01"
    installations: Mapping[str, int] | None = None
    rate_limit: int = 5000
    token_ttl_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.rate_limit <= 0 or self.token_ttl_s <= 0:
            raise ValueError("SimulatedApp: rate_limit and token_ttl_s must be positive")


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that shapes a simulated GitHub; the defaults are GitHub's documented ones.

    ``token=None`` accepts any non-empty token (each one a user with its own budget).
    ``latency_ms`` delays every answer but is not server time; ``server_time_ms`` is, and
    counts toward ``max_server_seconds_per_minute``. ``sizes`` overrides the item count
    (pulls plus issues) of the ordinary repos, cycled, e.g. ``(2000,)`` for benchmarks.
    ``now`` is the simulated present when the server starts: all generated timestamps are
    before it, and the scenario repos' items fall in the year before it (the report year);
    from the start the clock runs with real time (``Date`` headers, edits' ``updated_at``).
    ``scenarios=False``: ordinary repos only (benchmarks). ``history_years``: years of
    history the ordinary repos hold before the report year; ``touched_share``: the share of
    their items created before the report year that are updated in it. ``churn_ms`` > 0:
    while serving, one random entry of an issues list (or its pull) is edited every that
    many ms, old items included, with comments, pushes and releases in its repo now and
    then (``OrgModel.churn``); switchable at run time (``/__simulator/churn``).

    Audit options (github-api.md, "Repos and errors"; see ``owners``), all off by default:
    ``owner_type="user"`` makes the target a user (``/orgs/...`` answer 404; ``GET /user``
    and ``/user/repos?affiliation=owner`` serve it, with one more repo, private, listed
    only there) and ``owner_token`` is that user's token (None: every token is);
    ``saml_sso`` makes the org refuse every org resource with a SAML 403 and
    ``X-GitHub-SSO``; ``limit_status`` answers primary and secondary limits with 403 or
    429; ``issues_disabled`` names repos listed with ``has_issues: false`` whose issues
    list answers 410.
    ``slow_pages`` (repo name -> largest ``per_page``): that repo's list requests asking for
    more are cut short like GitHub's heavy pages (502/504 after ``slow_page_hold_s``).

    Credentials (``identities``): every token is a user with its own budget, unless
    ``users`` (login -> tokens) groups tokens of one user, who then share one budget (and
    ETags, which GitHub varies by who asks). ``app`` adds a GitHub App (``SimulatedApp``):
    ``GET /orgs/{org}/installation`` and ``POST /app/installations/{id}/access_tokens``
    with a JWT, installation tokens that expire. With ``saml_sso``, the tokens in
    ``saml_authorized`` (and installation tokens, as on GitHub) are let through.

    GraphQL (``gh_collect.simulator.graphql``): ``graphql_rate_limit`` points an hour per
    token, a budget apart from REST's; ``graphql_points_per_minute`` the secondary limit on
    points; ``slow_queries`` (repo name -> most pull requests with nested reviews one query
    may ask of it): heavier queries time out like GitHub's (502 after ``slow_page_hold_s``,
    charged extra points). ``many_reviews``: the submitted reviews of the scenario pull with
    many reviews (``model.reviews``; 0: none), present when ``scenarios`` are.
    """

    seed: int = 0
    repos: int = 12
    org: str = "sample-org"
    token: str | None = None
    owner_type: str = "org"
    owner_token: str | None = None
    saml_sso: bool = False
    limit_status: int = 403
    issues_disabled: tuple[str, ...] = ()
    rate_limit: int = 5000
    reset_seconds: float = 3600.0
    latency_ms: float = 0.0
    server_time_ms: float = 0.0
    faults: Mapping[str, float] = field(default_factory=dict)
    fault_seed: int | None = None
    max_in_flight: int = 100
    max_per_minute: int = 900
    max_server_seconds_per_minute: float = 90.0
    secondary_retry_after: int = 60
    timeout_hold_s: float = 60.0
    slow_pages: Mapping[str, int] = field(default_factory=dict)
    slow_page_hold_s: float = 10.0
    cursor_threshold: int = 1000
    now: str = "2026-07-01T00:00:00Z"
    sizes: tuple[int, ...] | None = None
    scenarios: bool = True
    history_years: float = 10.0
    touched_share: float = 0.03
    churn_ms: float = 0.0
    users: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    app: SimulatedApp | None = None
    saml_authorized: tuple[str, ...] = ()
    graphql_rate_limit: int = 5000
    graphql_points_per_minute: int = 2000
    slow_queries: Mapping[str, int] = field(default_factory=dict)
    many_reviews: int = 250

    def __post_init__(self) -> None:
        validate_faults(self.faults)
        validate_slow_pages(self.slow_pages)
        validate_slow_pages(self.slow_queries)
        if not 0 <= self.many_reviews <= MANY_REVIEWS_LIMIT:
            raise ValueError(
                f"SimulatorConfig.many_reviews must be in [0, {MANY_REVIEWS_LIMIT}], "
                f"got {self.many_reviews}"
            )
        positive = {
            "rate_limit": self.rate_limit,
            "reset_seconds": self.reset_seconds,
            "max_in_flight": self.max_in_flight,
            "max_per_minute": self.max_per_minute,
            "max_server_seconds_per_minute": self.max_server_seconds_per_minute,
            "graphql_rate_limit": self.graphql_rate_limit,
            "graphql_points_per_minute": self.graphql_points_per_minute,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"SimulatorConfig.{name} must be positive, got {value}")
        if min(self.repos, self.latency_ms, self.server_time_ms, self.churn_ms) < 0:
            raise ValueError(
                "SimulatorConfig: repos, latency_ms, server_time_ms and churn_ms must be >= 0"
            )
        if self.history_years < 0 or not 0.0 <= self.touched_share <= 1.0:
            raise ValueError(
                "SimulatorConfig: history_years must be >= 0 and touched_share in [0, 1]"
            )
        if self.sizes is not None and any(size < 0 for size in self.sizes):
            raise ValueError("SimulatorConfig.sizes must hold item counts >= 0")
        parse_time(self.now)
        if self.owner_type not in ("org", "user"):
            raise ValueError(f"SimulatorConfig.owner_type must be org or user: {self.owner_type}")
        if isinstance(self.saml_authorized, str) or any(
            isinstance(tokens, str) for tokens in self.users.values()
        ):
            raise ValueError("SimulatorConfig: saml_authorized and users' tokens are tuples")
        tokens = [token for listed in self.users.values() for token in listed]
        if len(set(tokens)) != len(tokens) or not all(tokens):
            raise ValueError("SimulatorConfig.users: each token belongs to one user")
        if self.limit_status not in (403, 429):
            raise ValueError(
                f"SimulatorConfig.limit_status must be 403 or 429: {self.limit_status}"
            )
