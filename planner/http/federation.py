"""Federated questions (docs/planner-api.md, "Several sites"): the same question to every
configured site (EXECPLANNER_SITES), answered together, each site labelled. Only for callers
with a token: the token goes on to the sites, which each check it against the shared issuer
and apply their own allowlists and quotas; no anonymous caller makes this service fetch.

  POST /federation/accepts    the note's question; answers ranked (YES, earliest, best fit)
  POST /federation/offersets  an offer set at every site; offers ranked by start, each keeping
                              the href of its site, where it is accepted
  GET  /federation/sessions   the caller's sessions at every site
"""
from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .. import federation
from .common import answer, caller, read_body, service

routes = web.RouteTableDef()


async def _federated(request: web.Request, method: str, path: str, with_body: bool = False,
                     follow: bool = False) -> list[federation.SiteAnswer]:
    arrived = time.monotonic()  # the deadline runs from here
    svc = service(request)
    await caller(request)  # first: 401 without a valid token (no fetch for strangers)
    body: Any = await read_body(request) if with_body else None
    if svc.federation is None:  # no sites configured (EXECPLANNER_SITES): a federation of none
        return []
    return await svc.federation.ask(method, path, request.headers.get("Authorization"), body, follow, since=arrived)


def _sites(answers: list[federation.SiteAnswer]) -> list[dict[str, Any]]:
    return [a.summary() for a in answers]


@routes.post("/federation/accepts")
async def federated_accepts(request: web.Request) -> web.Response:
    answers = await _federated(request, "POST", "/accepts", with_body=True)
    ranked = federation.rank_accepts(answers)
    word = "YES" if any(a.get("responseword") == "YES" for a in ranked) else "NO"
    return answer(request, {"responseword": word, "answers": ranked, "sites": _sites(answers)})


@routes.post("/federation/offersets")
async def federated_offersets(request: web.Request) -> web.Response:
    answers = await _federated(request, "POST", "/offersets", with_body=True, follow=True)
    offers = federation.rank_offers(answers)
    sets = [{"site": a.site, **a.document} for a in answers
            if a.status == "answered" and isinstance(a.document, dict) and "offers" in a.document]
    return answer(request, {"result": "YES" if offers else "NO", "offers": offers, "offersets": sets,
                            "sites": _sites(answers)})


@routes.get("/federation/sessions")
async def federated_sessions(request: web.Request) -> web.Response:
    answers = await _federated(request, "GET", "/sessions")
    return answer(request, {"sessions": federation.gather_lists(answers, "sessions"), "sites": _sites(answers)})
