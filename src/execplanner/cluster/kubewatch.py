"""List-then-watch of one kind of object, as plain dicts (an informer without the models).

kubernetes_asyncio's Watch turns every event into generated model objects and back; the
planner only needs the JSON, so this reads the API server's stream itself, through the
ApiClient (its credentials, TLS and host). After a dropped watch it resumes from the last
resourceVersion; when that is too old (410 Gone) it lists again and reports the objects
that vanished meanwhile as deletions, so the consumer's view always converges.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from .kube import checked

log = logging.getLogger("execplanner.planner.watch")

Handler = Callable[[str, dict[str, Any]], None]


class Gone(Exception):
    """The resourceVersion is too old: list again."""


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


class Informer:
    """Keeps calling `handle(type, object)` for one collection (e.g. "/api/v1/pods")."""

    def __init__(self, api: client.ApiClient, path: str, handle: Handler, *, timeout_seconds: int = 240,
                 label_selector: str | None = None) -> None:
        self.api, self.path, self.handle, self.timeout_seconds = api, path, handle, timeout_seconds
        self.selector = {"labelSelector": label_selector} if label_selector else {}
        self.synced = asyncio.Event()
        self.known: dict[tuple[str, str], str] = {}  # key -> uid, to report deletions after a relist
        self.last_event = 0.0
        self.errors = 0

    async def _get(self, params: dict[str, Any], timeout: float | None):
        """The response, once its status says it is what was asked for (kube.checked: a 403
        or 500 would otherwise be read as a list or a stream, and fail on a missing field)."""
        resp = await self.api.call_api(
            self.path, "GET", query_params=list(params.items()), header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"], _preload_content=False, _request_timeout=timeout)
        try:
            return await checked(resp)
        except ApiException as e:
            if e.status == 410:
                raise Gone() from e
            raise

    async def _list(self) -> str:
        params: dict[str, Any] = {"limit": 2000, **self.selector}
        seen: dict[tuple[str, str], dict] = {}
        while True:
            resp = await self._get(params, 60)
            try:
                body = json.loads(await resp.read())
            finally:
                resp.release()
            for obj in body.get("items") or []:
                seen[_key(obj)] = obj
            cont = (body.get("metadata") or {}).get("continue")
            if not cont:
                version = body["metadata"]["resourceVersion"]
                break
            params["continue"] = cont
        for key in [k for k in self.known if k not in seen]:
            ns, name = key
            self.handle("DELETED", {"metadata": {"namespace": ns or None, "name": name, "uid": self.known.pop(key)}})
        for key, obj in seen.items():
            self.known[key] = obj["metadata"].get("uid", "")
            self.handle("ADDED", obj)
        self.last_event = asyncio.get_running_loop().time()
        return version

    async def _watch(self, version: str) -> str:
        params = {"watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": self.timeout_seconds, **self.selector}
        resp = await self._get(params, self.timeout_seconds + 30)
        loop = asyncio.get_running_loop()
        try:
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                etype, obj = event.get("type"), event.get("object") or {}
                if etype == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                self.last_event = loop.time()
                if etype == "BOOKMARK":
                    continue
                key = _key(obj)
                if etype == "DELETED":
                    self.known.pop(key, None)
                else:
                    self.known[key] = obj["metadata"].get("uid", "")
                self.handle(etype, obj)
        finally:
            resp.release()
        return version

    async def run(self) -> None:
        """Forever: list, then watch from there; back off on errors."""
        backoff = 0.5
        version: str | None = None
        while True:
            try:
                if version is None:
                    version = await self._list()
                    self.synced.set()
                version = await self._watch(version)
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Gone:
                version = None
            except Exception as e:  # the API server restarted, a network blip, a bug in a handler
                self.errors += 1
                log.warning("watch of %s failed (%s: %s); again in %.1fs", self.path, type(e).__name__, e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                if isinstance(e, ApiException) and e.status == 410:
                    version = None

