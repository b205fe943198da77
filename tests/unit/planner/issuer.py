"""A test OIDC issuer: its JWKS on loopback (aiohttp, in the test's event loop), keys that can
be rotated, a count of fetches; tokens minted with execplanner.devidentity."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from execplanner import devidentity

ISSUER, AUDIENCE = "https://issuer.test", "execplanner-tests"


class Issuer:
    """An OIDC issuer's JWKS on loopback whose keys can be rotated; counts its fetches."""

    def __init__(self, tmp_path: Path) -> None:
        self.keys = {"k1": devidentity.private_key(tmp_path / "k1")}
        self.fetches = 0
        self.server: TestServer | None = None

    async def start(self) -> Issuer:
        async def jwks(request: web.Request) -> web.Response:
            self.fetches += 1
            return web.json_response({"keys": [devidentity.jwks(k, kid)["keys"][0] for kid, k in self.keys.items()]})
        app = web.Application()
        app.router.add_get("/jwks.json", jwks)
        self.server = TestServer(app)
        await self.server.start_server()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/jwks.json"))

    def token(self, user: str = "alice", kid: str = "k1", key=None, **claims) -> str:
        return devidentity.mint(key or self.keys[kid], user, issuer=claims.pop("iss", ISSUER),
                                audience=claims.pop("aud", AUDIENCE), kid=kid, **claims)
