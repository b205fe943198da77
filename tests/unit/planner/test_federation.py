"""Federated questions: every site asked at once within the deadline, the slow, the failing
and the garbage reported as such, answers ranked and labelled (planner/federation.py)."""
from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.test_utils import TestServer

from execplanner.planner.federation import Federation, Site, SiteAnswer, rank_accepts, rank_offers


def _site_app(behaviour: str, answer: dict | None = None) -> web.Application:
    async def accepts(request: web.Request) -> web.StreamResponse:
        assert request.headers.get("Authorization") == "Bearer t"  # the caller's token goes on
        if behaviour == "slow":
            await asyncio.sleep(5)
        if behaviour == "fails":
            return web.json_response({"error": "boom", "status": 500}, status=500)
        if behaviour == "garbage":
            return web.Response(text="<html>not json</html>")
        return web.json_response(answer)

    async def offersets(request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther("/offersets/x")

    async def offerset(request: web.Request) -> web.StreamResponse:
        return web.json_response({"uuid": "x", "offers": [
            {"href": f"http://{request.host}/sessions/1", "schedule": {"executing": {"start": answer["start"] + "/PT0S"}}}]})

    app = web.Application()
    app.add_routes([web.post("/accepts", accepts), web.post("/offersets", offersets),
                    web.get("/offersets/x", offerset)])
    return app


async def test_every_site_within_the_deadline_each_labelled_and_ranked():
    yes_late = {"responseword": "YES", "start": "2026-12-01T12:00:00Z", "resources": {"maxcores": "8"}}
    yes_soon = {"responseword": "YES", "start": "2026-12-01T10:00:00Z", "resources": {"maxcores": "16"}}
    no = {"responseword": "NO", "start": None}
    servers = {name: TestServer(_site_app(kind, answer)) for name, kind, answer in (
        ("late", "ok", yes_late), ("soon", "ok", yes_soon), ("no", "ok", no), ("slow", "slow", None),
        ("fails", "fails", None), ("garbage", "garbage", None))}
    for s in servers.values():
        await s.start_server()
    fed = Federation([Site(name=n, url=str(s.make_url(""))) for n, s in servers.items()], deadline=0.5)
    try:
        started = time.monotonic()
        answers = await fed.ask("POST", "/accepts", "Bearer t", {"tasktype": "uri://docker-container"})
        took = time.monotonic() - started
    finally:
        await fed.close()
        for s in servers.values():
            await s.close()
    assert took < 1.0  # the slow site did not hold the others up past the deadline
    status = {a.site: a.status for a in answers}
    assert status == {"late": "answered", "soon": "answered", "no": "answered", "slow": "timeout",
                      "fails": "failed", "garbage": "failed"}
    assert "boom" in next(a.error for a in answers if a.site == "fails")
    ranked = rank_accepts(answers)
    assert [r["site"] for r in ranked] == ["soon", "late", "no"]  # YES by earliest start, then NO


def test_equal_starts_go_to_the_smallest_offer_that_serves():
    def yes(site: str, cores: str) -> SiteAnswer:
        return SiteAnswer(site, "u", http_status=200, document={
            "responseword": "YES", "start": "2026-12-01T10:00:00Z", "resources": {"maxcores": cores}})
    assert [r["site"] for r in rank_accepts([yes("big", "32"), yes("small", "8")])] == ["small", "big"]


async def test_offers_keep_their_own_site_and_href():
    servers = [TestServer(_site_app("ok", {"start": start})) for start in ("2026-12-01T12:00:00Z",
                                                                            "2026-12-01T09:00:00Z")]
    for s in servers:
        await s.start_server()
    urls = [str(s.make_url("")).rstrip("/") for s in servers]
    fed = Federation([Site(name=f"s{i}", url=url) for i, url in enumerate(urls)], deadline=2)
    try:
        answers = await fed.ask("POST", "/offersets", "Bearer t", {}, follow=True)
    finally:
        await fed.close()
        for s in servers:
            await s.close()
    offers = rank_offers(answers)
    assert [o["site"] for o in offers] == ["s1", "s0"]
    assert offers[0]["href"].startswith(urls[1])

