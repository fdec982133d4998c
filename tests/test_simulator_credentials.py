"""The simulator's identities: budgets per credential, users with several tokens, apps,
SAML, ETags that vary by who asks, several orgs on one host.

Why: the pool is only as well tested as the simulator is like GitHub. GitHub keeps one
budget per user (every token of theirs spends it) and one per installation; its installation
tokens expire; an org enforcing SAML lets in only tokens authorised for it (and apps); its
ETags vary by Authorization. Plain HTTP against the running simulator, as a client sees it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gh_collect.simulator import Simulator, SimulatorConfig
from gh_collect.simulator.server.config import SimulatedApp
from gh_collect.simulator.server.owners import OTHER_USER

ORG = "sample-org"
PULLS = f"/repos/{ORG}/hundred-repo/pulls"


def get(sim: Simulator, path: str, token: str, **headers: str) -> httpx.Response:
    return httpx.get(
        f"{sim.url}{path}",
        headers={"Authorization": f"Bearer {token}", "User-Agent": "test", **headers},
    )


def remaining(response: httpx.Response) -> int:
    return int(response.headers["x-ratelimit-remaining"])


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def sim(key: rsa.RSAPrivateKey) -> Iterator[Simulator]:
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    app = SimulatedApp(public_key=public.decode(), rate_limit=12500, token_ttl_s=2)
    cfg = SimulatorConfig(
        seed=7,
        repos=10,
        org=ORG,
        rate_limit=100,
        users={"alice": ("alice-1", "alice-2"), "bob": ("bob-1",)},
        app=app,
    )
    with Simulator(cfg) as simulator:
        yield simulator


def mint(sim: Simulator, key: rsa.RSAPrivateKey) -> dict[str, str]:
    now = int(time.time())
    token = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": "1"}, key, algorithm="RS256")
    found = get(sim, f"/orgs/{ORG}/installation", token)
    assert found.status_code == 200
    installation = found.json()["id"]
    minted = httpx.post(
        f"{sim.url}/app/installations/{installation}/access_tokens",
        headers={"Authorization": f"Bearer {token}", "User-Agent": "test"},
    )
    assert minted.status_code == 201
    body: dict[str, str] = minted.json()
    return body


def test_tokens_of_one_user_share_a_budget_and_other_users_have_their_own(
    sim: Simulator,
) -> None:
    first = remaining(get(sim, PULLS, "alice-1"))
    assert remaining(get(sim, PULLS, "alice-2")) == first - 1
    assert remaining(get(sim, PULLS, "bob-1")) == 99
    assert remaining(get(sim, PULLS, "anyone-else")) == 99


def test_get_user_says_whose_token_it_is(sim: Simulator) -> None:
    ids = {token: get(sim, "/user", token).json()["id"] for token in ("alice-1", "alice-2")}
    assert ids["alice-1"] == ids["alice-2"]
    assert get(sim, "/user", "alice-1").json()["login"] == "alice"
    logins = {token: get(sim, "/user", token).json()["login"] for token in ("bob-1", "x-1", "x-2")}
    assert logins == {"bob-1": "bob", "x-1": OTHER_USER, "x-2": OTHER_USER}  # unnamed: one login
    assert get(sim, "/user", "bob-1").json()["id"] != ids["alice-1"]


def test_installation_tokens_spend_the_installations_budget_and_expire(
    sim: Simulator, key: rsa.RSAPrivateKey
) -> None:
    minted = mint(sim, key)
    token = minted["token"]
    assert token.startswith("ghs_") and minted["expires_at"].endswith("Z")
    answer = get(sim, PULLS, token)
    assert answer.status_code == 200 and answer.headers["x-ratelimit-limit"] == "12500"
    assert get(sim, "/user", token).status_code == 403  # an integration has no user
    served = httpx.get(f"{sim.url}/rate_limit", headers={"User-Agent": "t"}).headers["date"]
    assert served  # the expiry is on the clock that stamps Date
    time.sleep(2.1)
    assert get(sim, PULLS, token).status_code == 401
    assert sim.app_stats()["mints"] >= 1


def test_etags_vary_by_who_asks(sim: Simulator) -> None:
    """A 304 is free only to the same authorization: alice's ETag is not bob's."""
    alice = get(sim, PULLS, "alice-1")
    assert get(sim, PULLS, "alice-2", **{"If-None-Match": alice.headers["etag"]}).status_code == 304
    assert get(sim, PULLS, "bob-1", **{"If-None-Match": alice.headers["etag"]}).status_code == 200
    plain = get(sim, PULLS, "plain-token")
    assert plain.headers["etag"] != alice.headers["etag"]  # plain tokens: the ETag as before


def test_a_saml_org_lets_in_authorised_tokens_and_installations(key: rsa.RSAPrivateKey) -> None:
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    app = SimulatedApp(public_key=public.decode())
    cfg = SimulatorConfig(seed=7, repos=3, org=ORG, saml_sso=True, saml_authorized=("ok",), app=app)
    with Simulator(cfg) as saml:
        refused = get(saml, f"/orgs/{ORG}/repos", "not-authorised")
        assert refused.status_code == 403 and "required" in refused.headers["x-github-sso"]
        assert get(saml, f"/orgs/{ORG}/repos", "ok").status_code == 200
        assert get(saml, f"/orgs/{ORG}/repos", mint(saml, key)["token"]).status_code == 200


def test_several_orgs_on_one_host_share_budgets() -> None:
    second = SimulatorConfig(seed=8, repos=3, org="other-org")
    with Simulator(SimulatorConfig(seed=7, repos=3, org=ORG), others=[second]) as sim:
        mine = get(sim, f"/orgs/{ORG}/repos", "t")
        theirs = get(sim, "/orgs/other-org/repos", "t")
        assert {r["owner"]["login"] for r in mine.json()} == {ORG}
        assert {r["owner"]["login"] for r in theirs.json()} == {"other-org"}
        assert remaining(theirs) == remaining(mine) - 1  # one token, one budget
        repo_id = theirs.json()[0]["id"]
        by_id = get(sim, f"/repositories/{repo_id}", "t")
        assert by_id.status_code == 200 and by_id.json()["owner"]["login"] == "other-org"
        assert sim.stats(org="other-org")["requests"] == 2
        assert sim.ground_truth(org="other-org") != sim.ground_truth()
