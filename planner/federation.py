"""Several sites, one question: the planner asks its peer sites (each a planner over its own
cluster) the caller's question in parallel, with the caller's token, within a deadline, and
merges what they say. No site books another's capacity: offers keep the href of the site
that made them, and are accepted there.

A site that does not answer in time, fails, or answers something that is not the document
asked for is reported as such (`status`), and never holds up or breaks the others' answers.
"""
from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pydantic import BaseModel, Field

MAX_ANSWER_BYTES = 4 * 2 ** 20  # beyond this a site's answer is garbage, not read further


class Site(BaseModel):
    """A peer site: its name (as offers are labelled), the base URL of its planner, and the CA
    that signs its certificate when that is not a public one (a file path)."""
    name: str = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    url: str = Field(pattern=r"^https?://")
    ca: str | None = None


@dataclass
class SiteAnswer:
    site: str
    url: str
    status: str = "answered"  # answered | timeout | failed
    http_status: int | None = None
    ms: float = 0.0
    error: str | None = None
    document: Any = None

    def summary(self) -> dict[str, Any]:
        out = {"site": self.site, "url": self.url, "status": self.status, "ms": round(self.ms, 1)}
        if self.http_status is not None:
            out["httpStatus"] = self.http_status
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class Federation:
    """The sites this planner federates (its own among them, if configured so) and one HTTP
    session for asking them."""
    sites: list[Site]
    deadline: float
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def ask(self, method: str, path: str, authorization: str | None, body: Any = None,
                  follow: bool = False, since: float | None = None) -> list[SiteAnswer]:
        """Every site's answer to `method path` (with `body` as JSON), in the sites' order,
        within the deadline from `since` (time.monotonic(): when the question arrived; now if
        not given). `follow`: a 303's Location is fetched too (POST /offersets)."""
        deadline = (since if since is not None else time.monotonic()) + self.deadline
        return list(await asyncio.gather(*(self._one(s, method, path, authorization, body, follow, deadline)
                                           for s in self.sites)))

    async def _one(self, site: Site, method: str, path: str, authorization: str | None, body: Any, follow: bool,
                   deadline: float) -> SiteAnswer:
        out = SiteAnswer(site.name, site.url)
        started = time.monotonic()
        try:
            out.http_status, out.document = await asyncio.wait_for(
                self._fetch(site, method, path, authorization, body, follow), max(0.0, deadline - started))
            if out.http_status >= 500:
                out.status, out.error = "failed", _problem(out.document, out.http_status)
        except asyncio.TimeoutError:
            out.status, out.error = "timeout", f"no answer within {self.deadline:g} s"
        except (aiohttp.ClientError, OSError, ValueError, UnicodeDecodeError) as e:
            out.status, out.error = "failed", f"{type(e).__name__}: {e}"[:300]
        out.ms = (time.monotonic() - started) * 1000
        return out

    async def _fetch(self, site: Site, method: str, path: str, authorization: str | None, body: Any,
                     follow: bool) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        url = site.url.rstrip("/") + path
        tls = _tls(site.ca)
        async with self.session().request(method, url, json=body, headers=headers, ssl=tls,
                                          allow_redirects=False) as r:
            if follow and r.status == 303 and r.headers.get("Location"):
                location = str(r.url.join(aiohttp.client.URL(r.headers["Location"])))
                async with self.session().get(location, headers=headers, ssl=tls) as again:
                    return again.status, await _json(again)
            return r.status, await _json(r)


def _tls(ca: str | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=ca) if ca else True


async def _json(r: aiohttp.ClientResponse) -> Any:
    raw = await r.content.read(MAX_ANSWER_BYTES + 1)
    if len(raw) > MAX_ANSWER_BYTES:
        raise ValueError(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
    return json.loads(raw) if raw.strip() else None


def _problem(document: Any, status: int) -> str:
    if isinstance(document, Mapping) and isinstance(document.get("error"), str):
        return f"{status}: {document['error']}"[:300]
    return f"HTTP {status}"


# -- merging ------------------------------------------------------------------------------------

def _number(text: Any) -> float:
    try:
        return float(str(text).rstrip("GgMmKkiIB") or "inf")
    except ValueError:
        return float("inf")


def rank_accepts(answers: Iterable[SiteAnswer]) -> list[dict[str, Any]]:
    """The sites' /accepts answers, each labelled with its site: YES before NO, then the
    earliest start, then the best fit (the smallest offer that serves: bigger sites stay free
    for bigger work), then the sites' order."""
    rows = []
    for order, a in enumerate(answers):
        doc = a.document
        if a.status != "answered" or not isinstance(doc, Mapping) or a.http_status != 200:
            continue
        resources = doc.get("resources") if isinstance(doc.get("resources"), Mapping) else {}
        key = (doc.get("responseword") != "YES", str(doc.get("start") or "~"),
               _number(resources.get("maxcores")), _number(resources.get("maxmemory")), order)
        rows.append((key, {"site": a.site, **doc}))
    return [row for _, row in sorted(rows, key=lambda r: r[0])]


def rank_offers(answers: Iterable[SiteAnswer]) -> list[dict[str, Any]]:
    """The offers of the sites' offer sets, each labelled with its site and keeping its own
    href (accepted where it was made), by earliest start, then the sites' order."""
    rows = []
    for order, a in enumerate(answers):
        doc = a.document
        if a.status != "answered" or not isinstance(doc, Mapping):
            continue
        for i, offer in enumerate(doc.get("offers") or []):
            if isinstance(offer, Mapping):
                rows.append(((_start(offer), order, i), {"site": a.site, **offer}))
    return [row for _, row in sorted(rows, key=lambda r: r[0])]


def _start(session: Mapping[str, Any]) -> str:
    """When a session's task runs (its schedule's executing interval), as sortable text."""
    schedule = session.get("schedule") if isinstance(session.get("schedule"), Mapping) else {}
    executing = schedule.get("executing") if isinstance(schedule.get("executing"), Mapping) else {}
    start = executing.get("start")
    return str(start).split("/")[0] if isinstance(start, str) else "~"


def gather_lists(answers: Iterable[SiteAnswer], key: str) -> list[dict[str, Any]]:
    """A listing (`sessions`, `offersets`) from every site that answered, each item labelled."""
    out = []
    for a in answers:
        if a.status == "answered" and isinstance(a.document, Mapping):
            out += [{"site": a.site, **item} for item in a.document.get(key) or [] if isinstance(item, Mapping)]
    return out
