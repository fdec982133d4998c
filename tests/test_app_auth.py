"""A GitHub App installation as the credential: the JWT, installation tokens, their refresh.

Why: an org harvest runs for hours as an app installation (5,000 to 12,500 requests an
hour, not tied to a person); installation tokens last an hour, and tap-github failed mid-run
when they expired (PR #201). So the JWT must be what GitHub accepts, a token must be
refreshed before it ends by one task while the others wait (GitHub caps mintings), a 401
must mint a new token once and no more, and a harvest across several lifetimes must lose no
request. The simulator checks the JWT with the app's public key and expires tokens on a
time scale of seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gh_collect.config import Config
from gh_collect.errors import BadCredentialsError, ConfigError, RetriableApiError
from gh_collect.github.app_auth import JWT_BACKDATE_S, JWT_LIFETIME_S, app_jwt
from gh_collect.github.client import ClientOptions, GitHubClient
from gh_collect.github.credentials import AppSource, Credentials, Secret, resolve_credentials
from gh_collect.github.pool import CredentialPool
from gh_collect.harvest.run import collect
from gh_collect.report.progress import LogReporter
from gh_collect.simulator import Simulator, SimulatorConfig
from gh_collect.simulator.server.config import SimulatedApp

from .conftest import ORG, YEAR, assert_exactly_truth, dataset
from .test_client import API

CLIENT_ID = "Iv23liTestApp"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def app_source(key: rsa.RSAPrivateKey, installation_id: int | None = None) -> AppSource:
    return AppSource(CLIENT_ID, Secret(pem(key)), "/etc/app.pem", installation_id)


def app_config(tmp_path: Path, api_url: str, key: rsa.RSAPrivateKey, **github: Any) -> Config:
    key_file = tmp_path / "app.pem"
    key_file.write_text(pem(key))
    app = {"client_id": CLIENT_ID, "private_key_path": str(key_file)}
    return Config.model_validate(
        {
            "target": {"org": ORG},
            "year": YEAR,
            "github": {"api_url": api_url, "timeout_s": 5, "auth": {"app": app}, **github},
            "output": {"root": str(tmp_path / "data")},
        }
    )


def test_the_jwt_is_what_github_accepts(key: rsa.RSAPrivateKey) -> None:
    now = time.time()
    token = app_jwt(app_source(key), now)
    assert "***" in repr(token)
    header = jwt.get_unverified_header(token.reveal())
    claims = jwt.decode(token.reveal(), key.public_key(), algorithms=["RS256"])
    assert header["alg"] == "RS256"
    assert claims["iss"] == CLIENT_ID
    assert claims["iat"] == int(now) - JWT_BACKDATE_S
    assert claims["exp"] == int(now) + JWT_LIFETIME_S and claims["exp"] - now <= 600


@pytest.fixture
def app_sim(key: rsa.RSAPrivateKey) -> Iterator[Simulator]:
    """Installation tokens live 3 s; 80 ms a request so that a harvest outlives one."""
    app = SimulatedApp(public_key=public_pem(key), client_id=CLIENT_ID, token_ttl_s=3)
    cfg = SimulatorConfig(seed=7, repos=30, org=ORG, app=app, latency_ms=80)
    with Simulator(cfg) as sim:
        yield sim


def test_an_installation_token_expiring_mid_run_is_refreshed_with_no_failed_request(
    tmp_path: Path, app_sim: Simulator, key: rsa.RSAPrivateKey
) -> None:
    config = app_config(tmp_path, app_sim.url, key, concurrency=3)
    started = time.monotonic()
    result = collect(config, resolve_credentials(config, {}), reporter=LogReporter(quiet=True))
    elapsed = time.monotonic() - started
    minted = app_sim.app_stats()
    statuses = app_sim.stats()["by_status"]
    assert minted["mints"] >= 2, f"no token expired in {elapsed:.1f} s: the test proves nothing"
    assert minted["max_concurrent_mints"] == 1
    assert minted["jwt_refused"] == 0 and "401" not in statuses
    assert result.requests == app_sim.stats()["requests"]  # the JWT calls count too
    assert_exactly_truth(dataset(tmp_path), app_sim)


def test_a_burst_of_requests_mints_one_token(key: rsa.RSAPrivateKey) -> None:
    """Twenty requests at once, no token yet: one minting, the others wait for it."""
    pool = CredentialPool(Credentials((app_source(key, installation_id=7),)))
    client = GitHubClient(
        Config.model_validate({"target": {"org": "acme"}, "year": YEAR}).github,
        pool.view("acme"),
        rate_settings=Config.model_validate({"target": {"org": "x"}, "year": YEAR}).rate_limit,
    )
    router = respx.mock(assert_all_mocked=True)
    mint = router.post(f"{API}/app/installations/7/access_tokens").mock(
        side_effect=lambda request: _slow_token()
    )
    router.get(url__regex=rf"{API}/repos/acme/r\d+/pulls").mock(
        return_value=httpx.Response(200, json=[])
    )

    async def burst() -> None:
        async with client as gh:
            await asyncio.gather(*(gh.get_page(f"/repos/acme/r{i}/pulls") for i in range(20)))

    with router:
        asyncio.run(burst())
        assert mint.call_count == 1 and pool.mints() == 1


def _slow_token() -> httpx.Response:
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    return httpx.Response(201, json={"token": "ghs_minted_secret", "expires_at": expires})


def test_a_401_mints_a_new_token_once_and_a_second_refusal_stops(key: rsa.RSAPrivateKey) -> None:
    pool = CredentialPool(Credentials((app_source(key, installation_id=7),)))
    settings = Config.model_validate(
        {"target": {"org": "acme"}, "year": YEAR, "github": {"retry_initial_s": 0.01}}
    )
    tokens = iter(["ghs_first_secret", "ghs_second_secret", "ghs_third_secret"])
    router = respx.mock(assert_all_mocked=True)
    mint = router.post(f"{API}/app/installations/7/access_tokens").mock(
        side_effect=lambda request: httpx.Response(
            201, json={"token": next(tokens), "expires_at": "2099-01-01T00:00:00Z"}
        )
    )

    def answer(request: httpx.Request) -> httpx.Response:
        good = request.headers["authorization"] == "Bearer ghs_second_secret"
        if good and request.url.path.endswith("/a"):
            return httpx.Response(200, json=[])
        return httpx.Response(401, json={"message": "Bad credentials"})

    router.get(url__startswith=f"{API}/repos/acme/").mock(side_effect=answer)

    async def two(paths: list[str]) -> None:
        client = GitHubClient(
            settings.github, pool.view("acme"), rate_settings=settings.rate_limit,
            options=ClientOptions(),
        )  # fmt: skip
        async with client as gh:
            for path in paths:
                await gh.get_page(path)

    with router:
        asyncio.run(two(["/repos/acme/r/a"]))  # 401 with the first token, the second works
        assert mint.call_count == 2
        with pytest.raises(BadCredentialsError) as info:
            asyncio.run(two(["/repos/acme/r/b"]))  # 401, a new token, 401 again: stop
        assert mint.call_count == 3
    message = str(info.value)
    assert info.value.exit_code == 2 and "two installation tokens" in message
    assert "ghs_" not in message


def test_an_app_not_installed_on_the_org_is_exit_2_naming_it(
    tmp_path: Path, key: rsa.RSAPrivateKey
) -> None:
    app = SimulatedApp(public_key=public_pem(key), client_id=CLIENT_ID, installations={})
    with Simulator(SimulatorConfig(seed=7, repos=3, org=ORG, app=app)) as sim:
        config = app_config(tmp_path, sim.url, key)
        with pytest.raises(ConfigError) as info:
            collect(config, resolve_credentials(config, {}))
    message = str(info.value)
    assert f"GitHub App {CLIENT_ID} is not installed" in message
    assert "installation_id" in message and info.value.exit_code == 2


def test_a_wrong_key_is_refused_and_the_message_names_the_key_file(
    tmp_path: Path, key: rsa.RSAPrivateKey
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    app = SimulatedApp(public_key=public_pem(other), client_id=CLIENT_ID)
    with Simulator(SimulatorConfig(seed=7, repos=3, org=ORG, app=app)) as sim:
        config = app_config(tmp_path, sim.url, key)
        with pytest.raises(BadCredentialsError) as info:
            collect(config, resolve_credentials(config, {}))
        assert sim.app_stats()["jwt_refused"] == 1
    message = str(info.value)
    assert str(tmp_path / "app.pem") in message and "JWT" in message
    assert "PRIVATE KEY" not in message and info.value.exit_code == 2


def test_the_simulator_refuses_bad_jwts(key: rsa.RSAPrivateKey) -> None:
    """What GitHub refuses: expired, too far ahead, another issuer, another key, none."""
    app = SimulatedApp(public_key=public_pem(key), client_id=CLIENT_ID, app_id=99)
    now = int(time.time())

    def signed(claims: dict[str, Any], with_key: Any = key) -> str:
        return jwt.encode(claims, with_key, algorithm="RS256")

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "good": (signed({"iat": now - 60, "exp": now + 540, "iss": CLIENT_ID}), 200),
        "app id": (signed({"iat": now - 60, "exp": now + 540, "iss": "99"}), 200),
        "expired": (signed({"iat": now - 700, "exp": now - 60, "iss": CLIENT_ID}), 401),
        "too far": (signed({"iat": now - 60, "exp": now + 3600, "iss": CLIENT_ID}), 401),
        "issuer": (signed({"iat": now - 60, "exp": now + 540, "iss": "Iv23other"}), 401),
        "key": (signed({"iat": now - 60, "exp": now + 540, "iss": CLIENT_ID}, other), 401),
        "no exp": (signed({"iat": now - 60, "iss": CLIENT_ID}), 401),
        "not a jwt": ("ghp_plain_token", 401),
    }
    with Simulator(SimulatorConfig(seed=7, repos=3, org=ORG, app=app)) as sim:
        for name, (token, status) in cases.items():
            answer = httpx.get(
                f"{sim.url}/orgs/{ORG}/installation",
                headers={"Authorization": f"Bearer {token}", "User-Agent": "t"},
            )
            assert answer.status_code == status, name
        good = cases["good"][0]
        assert (
            httpx.get(  # a JWT is no token for data routes
                f"{sim.url}/orgs/{ORG}/repos",
                headers={"Authorization": f"Bearer {good}", "User-Agent": "t"},
            ).status_code
            == 401
        )


def test_a_rate_limited_minting_is_retried_a_bounded_number_of_times(
    key: rsa.RSAPrivateKey,
) -> None:
    """The app's own limit spent: the request that needed a token backs off and gives up
    after its attempts, never minting in a tight loop."""
    pool = CredentialPool(Credentials((app_source(key, installation_id=7),)))
    settings = Config.model_validate(
        {"target": {"org": "acme"}, "year": YEAR, "github": {"retries": 3}}
    )
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    router = respx.mock(assert_all_mocked=True)
    limited = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0",
               "x-ratelimit-reset": str(int(time.time()) + 600)}  # fmt: skip
    mint = router.post(f"{API}/app/installations/7/access_tokens").mock(
        return_value=httpx.Response(403, json={"message": "rate limit"}, headers=limited)
    )

    async def one() -> None:
        client = GitHubClient(
            settings.github, pool.view("acme"), rate_settings=settings.rate_limit,
            options=ClientOptions(sleep=sleep),
        )  # fmt: skip
        async with client as gh:
            await gh.get_page("/repos/acme/r/pulls")

    with router:
        with pytest.raises(RetriableApiError, match="rate limited"):
            asyncio.run(one())
        assert mint.call_count == 3  # one minting per attempt of the request
    assert len(slept) == 2  # the backoffs between the attempts: bounded
