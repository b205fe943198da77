"""The planner's HTTP API as the CLI sees it: stdlib urllib, a bearer token, one error type.

Every failure becomes a :class:`CliError` carrying the one line the user sees and the exit
code (1 for server and network errors); nothing here lets a traceback through.
"""
from __future__ import annotations

import errno
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from execplanner import __version__

USER_AGENT = f"execplanner-cli/{__version__}"
REDIRECTS = (301, 302, 303, 307, 308)


class CliError(Exception):
    """An error for the user: one line on stderr, then exit with ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    method: str
    path: str  # as shown in messages: the path below the base URL, without the query
    url: str = ""
    location: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            snippet = " ".join(self.text.split())[:80]
            raise CliError(f"unexpected answer from {self.method} {self.path}: not JSON "
                           f"({self.content_type or 'no content type'}: {snippet!r})") from None

    def xml(self) -> ET.Element:
        try:
            return ET.fromstring(self.body)
        except ET.ParseError as exc:
            raise CliError(f"unexpected answer from {self.method} {self.path}: not XML ({exc})") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by :meth:`Client.request` itself (so it knows where it went)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


def error_text(status: int, content_type: str, body: bytes) -> str:
    """The server's own words for an error: JSON ``error``, else the text or XML's text."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return ""
    if content_type.endswith("json") or text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            for key in ("error", "message", "detail", "reason"):
                if isinstance(doc.get(key), str) and doc[key]:
                    field = doc.get("field")
                    if isinstance(field, str) and field and field not in doc[key]:
                        return f"{field}: {doc[key]}"
                    return doc[key]
            return ""
    if content_type.endswith("xml") or text.startswith("<"):
        try:
            root = ET.fromstring(text)
        except ET.ParseError:
            pass
        else:
            text = " ".join("".join(root.itertext()).split())
    elif content_type == "text/html":
        return ""
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:299] + "…"


def _reason(exc: BaseException) -> str:
    """A short, human phrase for a network failure."""
    inner: Any = exc
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        inner = exc.reason
    if isinstance(inner, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(inner, ConnectionRefusedError) or getattr(inner, "errno", None) == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(inner, ConnectionResetError):
        return "connection reset"
    if isinstance(inner, socket.gaierror):
        return f"unknown host ({inner.strerror or inner})"
    if isinstance(inner, ssl.SSLError):
        return f"TLS error ({getattr(inner, 'reason', None) or inner})"
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror[0].lower() + inner.strerror[1:]
    return str(inner) or inner.__class__.__name__


class Client:
    """Talks to the planner at ``base_url``; every method raises only :class:`CliError`."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        parts = urllib.parse.urlsplit(self.base_url)
        self._origin = (parts.scheme, parts.netloc)
        self._base_path = parts.path.rstrip("/")
        self._opener = urllib.request.build_opener(_NoRedirect)

    # -- the one place that sends ------------------------------------------------------
    def request(self, method: str, path: str, *, json_body: Any = None,
                form: list[tuple[str, str]] | dict[str, str] | None = None,
                params: dict[str, Any] | None = None, accept: str = "application/json",
                follow: bool = True, timeout: float | None = None) -> Response:
        """Send one request (and follow redirects to GET, as 303 asks); raise on >= 400."""
        url = path if "://" in path else self.base_url + path
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params, doseq=True)
        body = None
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            body = urllib.parse.urlencode(form, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for _ in range(10):
            response = self._send(method, url, body, headers, timeout)
            if response.status in REDIRECTS and follow and response.location:
                url = urllib.parse.urljoin(url, response.location)
                if response.status in (301, 302, 303):
                    method, body = "GET", None
                    headers = {k: v for k, v in headers.items() if k != "Content-Type"}
                continue
            return response
        raise CliError(f"too many redirects from {method} {self._shown(url)}")

    def _shown(self, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        if (parts.scheme, parts.netloc) == self._origin and parts.path.startswith(self._base_path):
            return parts.path[len(self._base_path):] or "/"
        return urllib.parse.urlunsplit(parts._replace(query="", fragment=""))

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str],
              timeout: float | None) -> Response:
        shown = self._shown(url)
        headers = dict(headers)
        parts = urllib.parse.urlsplit(url)
        if self.token and (parts.scheme, parts.netloc) == self._origin:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with self._opener.open(req, timeout=timeout or self.timeout) as resp:
                status, resp_headers, data, reason = resp.status, resp.headers, resp.read(), resp.reason
        except urllib.error.HTTPError as exc:
            status, resp_headers, reason = exc.code, exc.headers, exc.reason
            try:
                data = exc.read()
            except (OSError, ValueError):
                data = b""
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = _reason(exc)
            if reason == "timed out":
                raise CliError(f"no answer from the planner at {self.base_url} within "
                               f"{timeout or self.timeout:g}s ({method} {shown})") from None
            raise CliError(f"cannot reach the planner at {self.base_url}: {reason}") from None
        except Exception as exc:  # http.client oddities (RemoteDisconnected, BadStatusLine, ...)
            raise CliError(f"cannot talk to the planner at {self.base_url}: {_reason(exc)} "
                           f"({method} {shown})") from None
        hdrs = {k.lower(): v for k, v in (resp_headers.items() if resp_headers else [])}
        response = Response(status, hdrs, data, method, shown, url, hdrs.get("location"))
        if status >= 400:
            words = error_text(status, response.content_type, data) or (reason if isinstance(reason, str) else "")
            message = f"{status} from {method} {shown}" + (f": {words}" if words else "")
            if status == 401:
                message += (" (give a token with --token, --token-file or EXECPLANNER_TOKEN)"
                            if not self.token else " (is the token right, and still valid?)")
            raise CliError(message, 1)
        return response

    # -- conveniences -------------------------------------------------------------------
    def get_json(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw).json()

    def post_json(self, path: str, body: Any, **kw: Any) -> Any:
        return self.request("POST", path, json_body=body, **kw).json()

    def get_text(self, path: str, **kw: Any) -> str:
        return self.request("GET", path, accept="text/plain, */*", **kw).text

    def get_xml(self, path: str, **kw: Any) -> ET.Element:
        return self.request("GET", path, accept="application/xml, text/xml", **kw).xml()
