"""Who is asking: bearer tokens (IVOA single sign-on is OAuth2/OIDC, so JWTs checked against
an issuer, an audience and the issuer's JWKS) or, for small sites, a static token file; and
which namespace a user's plans live in.

Signature checks use PyJWT; the JWKS is fetched with aiohttp (never blocking the event loop)
and fetched again, at most every 30 s, when a token names a key id not seen yet (key
rotation). Every refusal says why (Unauthorized's message, the 401's problem body): not a
JWT, an algorithm not accepted (`alg: none` among them), an unknown key, a bad signature,
expired, not yet valid, another audience, another issuer, a claim missing.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import jwt

from .settings import PlannerSettings

log = logging.getLogger("execplanner.planner.identity")
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"]
REFETCH_SECONDS = 30.0  # the JWKS is fetched again for an unknown key id at most this often
LEEWAY_SECONDS = 30     # clock skew allowed on exp, nbf and iat


class Unauthorized(Exception):
    """The token is missing where one is needed, or it is not valid (the message says why)."""


@dataclass(frozen=True)
class Identity:
    user: str
    namespace: str


class Authenticator:
    def __init__(self, settings: PlannerSettings) -> None:
        self.settings = settings
        self._keys: dict[str, jwt.PyJWK] = {}
        self._algs: dict[str | None, str] = {}  # key id -> the algorithm the issuer declares for it ("alg")
        self._fetched_at = 0.0
        self.fetches = 0  # JWKS fetches, ever
        self.refetch_seconds = REFETCH_SECONDS
        self._lock = asyncio.Lock()
        self._static = _read_token_file(settings.token_file) if settings.token_file else {}
        self._verified: dict[str, tuple[str, float]] = {}  # JWT -> (user, exp): a signature is checked once

    async def identify(self, authorization: str | None) -> Identity | None:
        """The caller's identity from an Authorization header; None for no header at all."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        token = token.strip()
        user = self._static_user(token) or self._remembered(token) or await self._jwt_user(token)
        return Identity(user, namespace_for(user, self.settings))

    def _remembered(self, token: str) -> str | None:
        found = self._verified.get(token)
        if found is None:
            return None
        if found[1] <= time.time():
            del self._verified[token]
            return None
        return found[0]

    def _static_user(self, token: str) -> str | None:
        for known, user in self._static.items():
            if hmac.compare_digest(known, token):
                return user
        return None

    async def _jwt_user(self, token: str) -> str:
        s = self.settings
        if not (s.jwt_issuer and s.jwks_url):
            raise Unauthorized("the token is not valid here (no JWT issuer is configured and it is not a static token)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise Unauthorized(f"the token is not a JWT: {e}") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise Unauthorized(f"the token is not signed (alg: {alg}); tokens must be signed by the issuer")
        if alg not in ALGORITHMS:
            raise Unauthorized(f"the token's signature algorithm {alg} is not accepted "
                               f"(accepted: {', '.join(ALGORITHMS)})")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Unauthorized("the token's key id (kid) is not a string")
        key = await self._key(kid)
        declared = self._algs.get(key.key_id)
        if declared and declared != alg:
            raise Unauthorized(f"the token is signed with {alg}, but the issuer's key {key.key_id} is for {declared}")
        try:
            claims = jwt.decode(token, key=key.key, algorithms=[alg], audience=s.jwt_audience,
                                issuer=s.jwt_issuer, options={"require": ["exp", "iss", "aud", s.jwt_user_claim]},
                                leeway=LEEWAY_SECONDS)
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired (its exp is past)") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("the token is not valid yet (its nbf or iat is in the future)") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized(f"the token is not meant for this service (its aud is not {s.jwt_audience!r})") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized(f"the token was issued by another issuer (its iss is not {s.jwt_issuer!r})") from None
        except jwt.MissingRequiredClaimError as e:
            raise Unauthorized(f"the token has no {e.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("the token's signature does not verify with the issuer's key "
                               f"{key.key_id or '(the only one)'}") from None
        except jwt.PyJWTError as e:
            raise Unauthorized(f"the token was refused: {e}") from None
        user = claims.get(s.jwt_user_claim)
        if not isinstance(user, str) or not user:
            raise Unauthorized(f"the token's {s.jwt_user_claim!r} claim does not name a user")
        if len(self._verified) >= 10_000:
            self._verified.clear()  # bounded memory; the next requests verify again
        self._verified[token] = (user, float(claims["exp"]))
        return user

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        known = (kid in self._keys) if kid else len(self._keys) == 1
        if not known:
            async with self._lock:  # one fetch for many callers; at most every 30 s after the first
                known = (kid in self._keys) if kid else len(self._keys) == 1  # fetched while we waited?
                # Without any key (the issuer was unreachable) try again sooner, still not on every request.
                interval = self.refetch_seconds if self._keys else min(5.0, self.refetch_seconds)
                if not known and (not self.fetches or time.monotonic() - self._fetched_at > interval):
                    await self._fetch()
        if not kid:
            if len(self._keys) != 1:
                raise Unauthorized("the token names no signing key (kid) and the issuer has several")
            return next(iter(self._keys.values()))
        if kid not in self._keys:
            raise Unauthorized(f"the token's signing key {kid!r} is not one of the issuer's keys (they were "
                               f"fetched {time.monotonic() - self._fetched_at:.0f} s ago, and are fetched again for "
                               f"an unknown key at most every {self.refetch_seconds:.0f} s)")
        return self._keys[kid]

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        self.fetches += 1
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.get(self.settings.jwks_url) as resp:
                    resp.raise_for_status()
                    document = await resp.json(content_type=None)
            if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
                raise ValueError("the document is not a JWKS (an object with a list of keys)")
            keys = jwt.PyJWKSet.from_dict(document)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, TypeError, jwt.PyJWTError) as e:
            log.warning("cannot fetch the JWKS from %s: %s", self.settings.jwks_url, e)
            raise Unauthorized("the issuer's signing keys cannot be fetched right now") from None
        self._keys = {k.key_id: k for k in keys.keys}
        self._algs = {k.get("kid"): k["alg"] for k in document.get("keys") or []
                      if isinstance(k, dict) and isinstance(k.get("alg"), str)}


def _read_token_file(path: str) -> dict[str, str]:
    """kube-apiserver's format: token,user[,uid[,"groups"]] per line; # comments."""
    tokens: dict[str, str] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 2 or not fields[0] or not fields[1]:
            raise ValueError(f"{path}:{n}: expected 'token,user'")
        tokens[fields[0]] = fields[1]
    return tokens


def namespace_for(user: str, settings: PlannerSettings) -> str:
    """The user's namespace: the explicit map first, else the template with the user's name made
    DNS-safe (lower case, [a-z0-9-]; a short hash is added whenever that changed the name, so
    two users never share a namespace)."""
    if user in settings.namespace_map:
        return settings.namespace_map[user]
    safe = re.sub(r"[^a-z0-9-]+", "-", user.lower()).strip("-") or "user"
    if safe != user:
        safe = f"{safe[:40]}-{hashlib.sha256(user.encode()).hexdigest()[:6]}"
    name = settings.namespace_template.format(user=safe)
    return name[:63].rstrip("-")
