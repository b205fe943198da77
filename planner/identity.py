"""Who is asking: bearer tokens (IVOA single sign-on is OAuth2/OIDC, so JWTs checked against
an issuer, an audience and the issuer's JWKS) or, for small sites, a static token file; and
which namespace a user's plans live in.

Signature checks use PyJWT; the JWKS is fetched with aiohttp (never blocking the event loop)
and fetched again, at most every 30 s, when a token names a key id not seen yet (key
rotation).
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
        self._fetched_at = 0.0
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
        key = await self._key(header.get("kid"))
        try:
            claims = jwt.decode(token, key=key.key, algorithms=ALGORITHMS, audience=s.jwt_audience,
                                issuer=s.jwt_issuer, options={"require": ["exp", "iss", "aud", s.jwt_user_claim]},
                                leeway=30)
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
                if not self._keys or time.monotonic() - self._fetched_at > 30:
                    await self._fetch()
        if not kid:
            if len(self._keys) != 1:
                raise Unauthorized("the token names no signing key (kid) and the issuer has several")
            return next(iter(self._keys.values()))
        if kid not in self._keys:
            raise Unauthorized(f"the token's signing key {kid!r} is not one of the issuer's keys")
        return self._keys[kid]

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.get(self.settings.jwks_url) as resp:
                    resp.raise_for_status()
                    document = await resp.json(content_type=None)
            keys = jwt.PyJWKSet.from_dict(document)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, jwt.PyJWTError) as e:
            log.warning("cannot fetch the JWKS from %s: %s", self.settings.jwks_url, e)
            raise Unauthorized("the issuer's signing keys cannot be fetched right now") from None
        self._keys = {k.key_id: k for k in keys.keys}


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
