"""A development identity provider for the local set-up: an RSA key pair kept in the local
state directory, its public half as a JWKS (served on loopback by `make planner`), and
bearer tokens signed with it (`make token USER=alice`). Real sites configure their OIDC
issuer instead; the planner checks both the same way.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://execplanner.local/dev-issuer"
AUDIENCE = "execplanner"
KID = "execplanner-dev-1"
JWKS_PORT = int(os.environ.get("EXECPLANNER_DEV_JWKS_PORT", "8079"))


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "execplanner" / "dev-identity"


def private_key(directory: Path | None = None) -> rsa.RSAPrivateKey:
    """The key pair, created on first use (0600) and reused after."""
    directory = directory or state_dir()
    path = directory / "signing-key.pem"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.replace(tmp, path)
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def jwks(key: rsa.RSAPrivateKey, kid: str = KID) -> dict:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**public, "kid": kid, "use": "sig", "alg": "RS256"}]}


def mint(key: rsa.RSAPrivateKey, user: str, *, issuer: str = ISSUER, audience: str = AUDIENCE,
         ttl: int = 12 * 3600, kid: str = KID, **claims) -> str:
    now = int(time.time())
    payload = {"iss": issuer, "aud": audience, "sub": user, "iat": now, "nbf": now - 5, "exp": now + ttl, **claims}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def planner_env(jwks_port: int = JWKS_PORT) -> dict[str, str]:
    """What a local planner needs to accept these tokens."""
    return {"EXECPLANNER_PLANNER_JWT_ISSUER": ISSUER, "EXECPLANNER_PLANNER_JWT_AUDIENCE": AUDIENCE,
            "EXECPLANNER_PLANNER_JWKS_URL": f"http://127.0.0.1:{jwks_port}/jwks.json"}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "token" or not args[1].strip():
        print("usage: python -m execplanner.devidentity token <user>   (make token USER=<user>)", file=sys.stderr)
        sys.exit(2)
    print(mint(private_key(), args[1].strip()))


if __name__ == "__main__":
    main()
