"""planner/identity.py's Authenticator against a real JWKS endpoint (aiohttp, in the test's own
event loop): every kind of bad token is refused with its reason, and keys rotated at the issuer
are fetched again once for an unknown key id, at most every REFETCH_SECONDS."""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest

from execplanner import devidentity
from execplanner.planner.identity import Authenticator, Unauthorized
from execplanner.planner.settings import PlannerSettings

from .issuer import AUDIENCE, ISSUER, Issuer


@pytest.fixture
async def issuer(tmp_path: Path):
    found = await Issuer(tmp_path).start()
    yield found
    assert found.server is not None
    await found.server.close()


def authenticator(issuer: Issuer) -> Authenticator:
    return Authenticator(PlannerSettings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwks_url=issuer.url))


def unsigned(claims: dict, header: dict) -> str:
    def part(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return f"{part(header)}.{part(claims)}."


async def refused(auth: Authenticator, token: str) -> str:
    with pytest.raises(Unauthorized) as err:
        await auth.identify(f"Bearer {token}")
    return str(err.value)


async def test_a_good_token_names_its_user(issuer: Issuer):
    auth = authenticator(issuer)
    who = await auth.identify(f"Bearer {issuer.token('alice')}")
    assert (who.user, who.namespace) == ("alice", "xp-alice")
    assert issuer.fetches == 1


async def test_each_bad_token_is_refused_with_its_reason(issuer: Issuer, tmp_path: Path):
    auth = authenticator(issuer)
    now = int(time.time())
    stranger = devidentity.private_key(tmp_path / "stranger")
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now + 3600}
    cases = {
        "expired": (issuer.token(exp=now - 3600), "has expired"),
        "not yet valid": (issuer.token(nbf=now + 3600), "not valid yet"),
        "issued in the future": (issuer.token(iat=now + 3600), "not valid yet"),
        "wrong audience": (issuer.token(aud="someone-else"), "not meant for this service"),
        "wrong issuer": (issuer.token(iss="https://evil.example"), "issued by another issuer"),
        "alg none": (unsigned(claims, {"alg": "none", "typ": "JWT", "kid": "k1"}), "not signed (alg: none)"),
        "alg None, no kid": (unsigned(claims, {"alg": "None"}), "not signed"),
        "alg HS256": (jwt.encode(claims, "k1-secret-long-enough-for-hmac-sha256", algorithm="HS256",
                                 headers={"kid": "k1"}), "algorithm HS256 is not accepted"),
        "unknown key": (issuer.token(kid="other", key=stranger), "'other' is not one of the issuer's keys"),
        "forged": (issuer.token(key=stranger), "signature does not verify"),
        "no exp": (jwt.encode({k: v for k, v in claims.items() if k != "exp"}, issuer.keys["k1"], algorithm="RS256",
                              headers={"kid": "k1"}), "no 'exp' claim"),
        "kid not a string": (unsigned(claims, {"alg": "RS256", "kid": ["k1"]}) + "c2ln", "Key ID"),
        "garbage": ("not-a-token", "not a JWT"),
    }
    for why, (token, reason) in cases.items():
        assert reason in await refused(auth, token), why
    # The key set was fetched once: the unknown key id came within REFETCH_SECONDS of that fetch.
    assert issuer.fetches == 1


async def test_rotated_keys_are_fetched_again_once_and_at_most_every_interval(issuer: Issuer, tmp_path: Path):
    auth = authenticator(issuer)
    assert (await auth.identify(f"Bearer {issuer.token('alice')}")).user == "alice"
    assert issuer.fetches == 1
    # The issuer rotates: k1 is retired, k2 signs from now on.
    issuer.keys = {"k2": devidentity.private_key(tmp_path / "k2")}
    # Within the interval after the last fetch an unknown key is not fetched for ...
    assert "'k2' is not one of the issuer's keys" in await refused(auth, issuer.token("bob", kid="k2"))
    assert issuer.fetches == 1
    # ... after it, once: the new key verifies, and many tokens with it cost no more fetches.
    auth._fetched_at -= auth.refetch_seconds + 1
    for user in ("bob", "carol", "dave"):
        assert (await auth.identify(f"Bearer {issuer.token(user, kid='k2')}")).user == user
    assert issuer.fetches == 2
    # A stranger's key id makes at most one fetch per interval, however often it is sent.
    stranger = devidentity.private_key(tmp_path / "stranger")
    auth._fetched_at -= auth.refetch_seconds + 1
    for _ in range(5):
        assert "'evil' is not one of the issuer's keys" in await refused(auth, issuer.token(kid="evil", key=stranger))
    assert issuer.fetches == 3
    # k1's tokens are refused once k1 is gone from the issuer's set.
    old_key = devidentity.private_key(tmp_path / "k1")
    assert "'k1' is not one of the issuer's keys" in await refused(auth, issuer.token("erin", kid="k1", key=old_key))


async def test_an_unreachable_issuer_is_a_reason_too(tmp_path: Path):
    auth = Authenticator(PlannerSettings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE,
                                         jwks_url="http://127.0.0.1:9/jwks.json"))
    token = devidentity.mint(devidentity.private_key(tmp_path / "k"), "alice", issuer=ISSUER, audience=AUDIENCE)
    assert "signing keys cannot be fetched" in await refused(auth, token)
    assert auth.fetches == 1
    assert "not one of the issuer's keys" in await refused(auth, token)  # not fetched again at once
    assert auth.fetches == 1
