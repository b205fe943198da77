"""A development identity provider for the local set-up: an RSA key pair kept in the local
state directory, its public half as a JWKS (served on loopback by `make planner`), and
bearer tokens signed with it (`make token USER=alice`). Real sites configure their OIDC
issuer instead; the planner checks both the same way.

DevIssuer also serves OpenID Connect's authorization code flow with PKCE on loopback, so the
web page (docs/web.md) signs people in as it would at a site's issuer: no passwords (any user
name is accepted: this is a development issuer, as `make token` is), S256 code challenges
only, redirect URIs on loopback only, one-time codes valid for a minute.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


WEB_CLIENT_ID = "execplanner-web"
CODE_SECONDS = 60
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def web_env(port: int = JWKS_PORT) -> dict[str, str]:
    """What a local planner needs so that its web page signs people in at the DevIssuer on `port`."""
    return {"EXECPLANNER_PLANNER_WEB_OIDC_AUTHORIZATION_URL": f"http://127.0.0.1:{port}/authorize",
            "EXECPLANNER_PLANNER_WEB_OIDC_TOKEN_URL": f"http://127.0.0.1:{port}/token",
            "EXECPLANNER_PLANNER_WEB_OIDC_CLIENT_ID": WEB_CLIENT_ID}


def pkce_challenge(verifier: str) -> str:
    """S256: base64url(sha256(verifier)) without padding (RFC 7636)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class DevIssuer:
    """The development issuer on loopback (a thread): its JWKS (/jwks.json), OpenID discovery
    (/.well-known/openid-configuration), and the authorization code flow with PKCE (/authorize,
    /token). Access tokens carry `audience` (the planner's); ID tokens the client id.

    /authorize shows a form asking for a user name; with `login_hint` it signs that user in at
    once (the demo's "signed-in link"). Only loopback redirect URIs are accepted, so a code is
    never sent off this machine."""

    def __init__(self, key, port: int = 0, issuer: str = ISSUER, audience: str = AUDIENCE,
                 client_ids: tuple[str, ...] = (WEB_CLIENT_ID,), ttl: int = 12 * 3600) -> None:
        self.key, self.issuer, self.audience, self.client_ids, self.ttl = key, issuer, audience, client_ids, ttl
        self.codes: dict[str, dict] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/jwks.json"  # as localrun.JwksServer's
        self.authorization_url, self.token_url = f"{self.base}/authorize", f"{self.base}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="dev-issuer").start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def web_env(self) -> dict[str, str]:
        return web_env(self.port)

    def discovery(self) -> dict:
        return {"issuer": self.issuer, "authorization_endpoint": self.authorization_url,
                "token_endpoint": self.token_url, "jwks_uri": self.url, "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"], "code_challenge_methods_supported": ["S256"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["none"], "scopes_supported": ["openid"]}

    # -- the flow ---------------------------------------------------------------------------------

    def check_authorize(self, q: dict[str, str]) -> tuple[str | None, str | None]:
        """(an error shown here, never redirected; an OAuth error for the redirect) for a request."""
        if q.get("client_id") not in self.client_ids:
            return f"unknown client_id {q.get('client_id')!r}", None
        uri = urllib.parse.urlsplit(q.get("redirect_uri", ""))
        if uri.scheme not in ("http", "https") or uri.hostname not in LOOPBACK or uri.fragment:
            return "redirect_uri must be an http(s) URL on loopback (127.0.0.1, localhost) without a fragment", None
        if q.get("response_type") != "code":
            return None, "unsupported_response_type"
        if q.get("code_challenge_method") != "S256" or not re.fullmatch(r"[A-Za-z0-9_-]{43}", q.get("code_challenge", "")):
            return None, "invalid_request"  # PKCE with S256 is required
        return None, None

    def issue_code(self, q: dict[str, str], user: str) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            for old in [c for c, v in self.codes.items() if v["expires"] < now]:
                del self.codes[old]
            self.codes[code] = {"user": user, "client_id": q["client_id"], "redirect_uri": q["redirect_uri"],
                                "challenge": q["code_challenge"], "nonce": q.get("nonce"), "expires": now + CODE_SECONDS}
        return code

    def exchange(self, form: dict[str, str]) -> tuple[int, dict]:
        """The token endpoint: (status, body) for a form (RFC 6749 4.1.3 with RFC 7636)."""
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self.codes.pop(form.get("code", ""), None)  # one use only, even when refused below
        if grant is None or grant["expires"] < time.time():
            return 400, {"error": "invalid_grant", "error_description": "the code is unknown, used or expired"}
        if form.get("client_id") != grant["client_id"] or form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "client_id or redirect_uri differ"}
        if pkce_challenge(form.get("code_verifier", "")) != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "the code_verifier does not match"}
        access = mint(self.key, grant["user"], issuer=self.issuer, audience=self.audience, ttl=self.ttl)
        extra = {"nonce": grant["nonce"]} if grant["nonce"] else {}
        id_token = mint(self.key, grant["user"], issuer=self.issuer, audience=grant["client_id"], ttl=self.ttl,
                        preferred_username=grant["user"], **extra)
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": self.ttl, "id_token": id_token,
                     "scope": "openid"}

    def _handler(self):
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, doc: dict, cors: bool = False) -> None:
                cors_headers = {"Access-Control-Allow-Origin": "*"} if cors else {}
                self._send(status, json.dumps(doc).encode(), "application/json", cors_headers)

            def _query(self) -> dict[str, str]:
                return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))

            def _form(self) -> dict[str, str]:
                length = min(int(self.headers.get("Content-Length") or 0), 65536)
                return dict(urllib.parse.parse_qsl(self.rfile.read(length).decode(errors="replace")))

            def do_OPTIONS(self) -> None:  # noqa: N802: CORS preflight for the token endpoint
                self._send(204, b"", "text/plain", {"Access-Control-Allow-Origin": "*",
                                                    "Access-Control-Allow-Methods": "POST",
                                                    "Access-Control-Allow-Headers": "Content-Type",
                                                    "Access-Control-Max-Age": "600"})

            def do_GET(self) -> None:  # noqa: N802
                path = urllib.parse.urlsplit(self.path).path
                if path == "/jwks.json":
                    self._json(200, jwks(issuer.key), cors=True)
                elif path == "/.well-known/openid-configuration":
                    self._json(200, issuer.discovery(), cors=True)
                elif path == "/authorize":
                    self._authorize(self._query(), self._query().get("login_hint"))
                else:
                    self._json(404, {"error": f"nothing at {path}"})

            def do_POST(self) -> None:  # noqa: N802
                path = urllib.parse.urlsplit(self.path).path
                if path == "/token":
                    status, doc = issuer.exchange(self._form())
                    self._json(status, doc, cors=True)
                elif path == "/authorize":
                    form = self._form()
                    self._authorize(form, form.get("user") or "", submitted=True)
                else:
                    self._json(404, {"error": f"nothing at {path}"})

            def _authorize(self, q: dict[str, str], user: str | None, submitted: bool = False) -> None:
                shown, redirected = issuer.check_authorize(q)
                if shown:
                    self._send(400, _page("Sign-in refused", f"<p>{html.escape(shown)}</p>"), "text/html; charset=utf-8")
                    return
                state = {"state": q["state"]} if q.get("state") else {}
                if redirected:
                    self._redirect(q["redirect_uri"], {"error": redirected, **state})
                    return
                user = (user or "").strip()
                if user and USER_NAME.match(user):
                    self._redirect(q["redirect_uri"], {"code": issuer.issue_code(q, user), **state})
                    return
                problem = "A user name is letters, digits and . _ @ - (at most 64)." if submitted or user else ""
                self._send(200, _sign_in_form(q, user, problem), "text/html; charset=utf-8")

            def _redirect(self, uri: str, params: dict[str, str]) -> None:
                sep = "&" if urllib.parse.urlsplit(uri).query else "?"
                self._send(303, b"", "text/plain", {"Location": uri + sep + urllib.parse.urlencode(params)})

        return Handler


FORM_FIELDS = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
               "code_challenge_method")


def _page(title: str, body: str) -> bytes:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            "<meta name=viewport content='width=device-width, initial-scale=1'><style>"
            "body{font:16px system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#1b1f24}"
            "input{font:inherit;padding:.4rem;width:100%;box-sizing:border-box;margin:.3rem 0 1rem}"
            "button{font:inherit;padding:.45rem 1.2rem}.problem{color:#a40e26}.note{color:#57606a;font-size:.9rem}"
            f"</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>").encode()


def _sign_in_form(q: dict[str, str], user: str, problem: str) -> bytes:
    hidden = "".join(f"<input type=hidden name='{k}' value='{html.escape(q[k], quote=True)}'>"
                     for k in FORM_FIELDS if q.get(k))
    shown = f"<p class=problem role=alert>{html.escape(problem)}</p>" if problem else ""
    return _page("Sign in to execplanner", (
        f"<form method=post action='/authorize'>{hidden}{shown}"
        "<label for=user>User name</label>"
        f"<input id=user name=user autocomplete=username autofocus required value='{html.escape(user, quote=True)}'>"
        "<button type=submit>Sign in</button></form>"
        "<p class=note>The local development issuer: any user name signs in, without a password.</p>"))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "token" or not args[1].strip():
        print("usage: python -m execplanner.devidentity token <user>   (make token USER=<user>)", file=sys.stderr)
        sys.exit(2)
    print(mint(private_key(), args[1].strip()))


if __name__ == "__main__":
    main()
