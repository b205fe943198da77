"""The web page's routes (planner/http/web.py) over the fake service, and the development
issuer's authorization code flow with PKCE (execplanner.devidentity.DevIssuer)."""
from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import jwt
import pytest

from execplanner import devidentity
from execplanner.engine import Resources
from execplanner.planner.cache import OFFERSET_LABEL, UWS_LABEL
from execplanner.planner.http import web
from execplanner.planner.http.openapi import document

from .fake_service import GI, bearer, client_for, make_service

NOW = int(time.time())


def iso(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def add_plan(svc, namespace: str, name: str, uid: str, *, labels=None, annotations=None, status=None, spec=None):
    key = (namespace, name)
    svc.cache.plans[key] = {"metadata": {"name": name, "namespace": namespace, "uid": uid, "resourceVersion": "1",
                                         "labels": labels or {}, "annotations": annotations or {},
                                         "creationTimestamp": "2026-01-01T00:00:00Z"},
                            "spec": spec or {}, "status": status or {}}
    svc.cache.by_uid[uid] = key
    return svc.cache.plans[key]


def booked(svc, uid: str, namespace: str, node: str, cores: int, start: int, end: int, expires=None):
    svc.cache.calendar.book(f"{uid}#1", namespace, [(node, Resources(cores * 1000, cores * GI, 0, 0, 1))], start, end,
                            expires)


# -- the page and its assets -----------------------------------------------------------------------------

async def test_page_carries_its_settings_and_a_strict_policy(tmp_path: Path):
    svc = make_service(tmp_path, web_oidc_authorization_url="https://login.example.org/auth",
                       web_oidc_token_url="https://login.example.org/token", web_grafana_url="https://grafana/d/x")
    client = await client_for(svc)
    try:
        r = await client.get("/")
        assert r.status == 200 and r.content_type == "text/html"
        text = await r.text()
        data = re.search(r'<script type="application/json" id="config">(.*?)</script>', text, re.S).group(1)
        config = json.loads(data)
        assert config["signIn"] == {"authorizationUrl": "https://login.example.org/auth",
                                    "tokenUrl": "https://login.example.org/token", "clientId": "execplanner-web",
                                    "scopes": "openid"}
        assert config["grafanaUrl"] == "https://grafana/d/x" and config["horizonHours"] == 168
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "connect-src 'self' https://login.example.org" in csp
        assert "unsafe" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["Referrer-Policy"] == "no-referrer"

        js = await client.get("/web/app.js")
        assert js.status == 200 and js.content_type == "text/javascript"
        again = await client.get("/web/app.js", headers={"If-None-Match": js.headers["ETag"]})
        assert again.status == 304
        for name in ("style.css", "favicon.svg"):
            assert (await client.get(f"/web/{name}")).status == 200
        for name in ("index.html", "..%2Fhttp%2Fweb.py", "nope.js"):
            missing = await client.get(f"/web/{name}")
            assert missing.status == 404 and (await missing.json())["status"] == 404
    finally:
        await client.close()


async def test_page_without_sign_in_configured(tmp_path: Path):
    client = await client_for(make_service(tmp_path))
    try:
        text = await (await client.get("/")).text()
        assert '"signIn": null' in text and '"grafanaUrl": null' in text
    finally:
        await client.close()


async def test_the_settings_cannot_break_out_of_the_data_block(tmp_path: Path):
    client = await client_for(make_service(tmp_path, web_grafana_url="</script><script>alert(1)</script>"))
    try:
        text = await (await client.get("/")).text()
    finally:
        await client.close()
    data = re.search(r'id="config">(.*?)</script>', text, re.S).group(1)
    assert json.loads(data)["grafanaUrl"] == "</script><script>alert(1)</script>" and "<" not in data


# -- /nodes, /calendar/compact, /calendar/version ------------------------------------------------------------

async def test_compact_calendar_names_only_the_callers_own(tmp_path: Path):
    svc = make_service(tmp_path)
    add_plan(svc, "xp-alice", "os-1", "u1", annotations={"execplanner.io/name": "my analysis"},
             status={"phase": "Booked"})
    add_plan(svc, "xp-bob", "os-2", "u2", annotations={"execplanner.io/name": "bob's secret"},
             status={"phase": "Running"})
    booked(svc, "u1", "xp-alice", "n1", 2, NOW + 600, NOW + 4200)
    booked(svc, "u2", "xp-bob", "n1", 4, NOW - 60, NOW + 600)
    booked(svc, "u3", "xp-carol", "n2", 1, NOW + 30 * 3600, NOW + 31 * 3600)  # beyond 24 hours: not shown
    client = await client_for(svc)
    try:
        r = await client.get("/calendar/compact?hours=24", headers=bearer("token-alice"))
        assert r.status == 200
        doc = await r.json()
        assert doc["names"] == ["my analysis"] and doc["kinds"] == ["booked", "running", "held"]
        n1, n2 = doc["nodes"]
        assert n1["name"] == "n1" and n1["allocatable"] == [16000, 64 * GI, 0] and n2["bookings"] == []
        mine, theirs = sorted(n1["bookings"], key=lambda b: b[6], reverse=True)
        assert mine[2:] == [2000, 2 * GI, 0, 0, 0] and 0 < mine[0] <= 600 and mine[1] - mine[0] == 3600
        assert theirs[2:] == [4000, 4 * GI, 0, 1, -1] and theirs[0] == 0  # running, not named, clamped to now
        assert "bob" not in await r.text()

        anonymous = await (await client.get("/calendar/compact")).json()
        assert anonymous["names"] == [] and all(b[6] == -1 for n in anonymous["nodes"] for b in n["bookings"])
        for bad in ("0", "-1", "nan", "x", str(24 * 7 + 1)):
            r = await client.get(f"/calendar/compact?hours={bad}")
            assert r.status == 400 and (await r.json())["field"] == "hours", bad
        # /calendar itself, anonymously: no names either.
        plain = await (await client.get("/calendar")).json()
        assert not any(b["mine"] or b["name"] for n in plain["nodes"] for b in n["bookings"])
    finally:
        await client.close()


async def test_calendar_reads_can_be_closed_to_anonymous_callers(tmp_path: Path):
    client = await client_for(make_service(tmp_path, anonymous_calendar=False))
    try:
        for path in ("/calendar", "/calendar/compact", "/calendar/version", "/nodes", "/bookings"):
            assert (await client.get(path)).status == 401, path
            assert (await client.get(path, headers=bearer("token-alice"))).status == 200, path
    finally:
        await client.close()


async def test_nodes_give_the_pool_labels_only(tmp_path: Path):
    svc = make_service(tmp_path, web_group_labels=["pool"])
    svc.cache.calendar.set_node("n3", Resources(8000, 32 * GI, 0, 10 * GI, 110),
                                {"pool": "gpu", "secret.example/label": "x"})
    client = await client_for(svc)
    try:
        doc = await (await client.get("/nodes")).json()
        assert doc["groupLabels"] == ["pool"]
        assert {n["name"]: n["labels"] for n in doc["nodes"]} == {"n1": {}, "n2": {}, "n3": {"pool": "gpu"}}
    finally:
        await client.close()


async def test_version_changes_with_the_calendar_and_with_ones_own_plans(tmp_path: Path):
    svc = make_service(tmp_path)
    client = await client_for(svc)

    async def version(headers=None) -> str:
        return (await (await client.get("/calendar/version", headers=headers or {})).json())["version"]
    try:
        first = await version()
        assert await version() == first  # nothing changed
        booked(svc, "u9", "xp-zed", "n2", 1, NOW + 60, NOW + 120)
        second = await version()
        assert second != first and await version() == second
        alice = await version(bearer("token-alice"))
        assert alice.startswith(second + "-")
        add_plan(svc, "xp-alice", "p1", "u10")
        assert await version(bearer("token-alice")) != alice  # her own plans, which the calendar may not show
        assert await version() == second
    finally:
        await client.close()


# -- /bookings -------------------------------------------------------------------------------------------

OFFERS = [{"id": "1", "start": iso(NOW + 60), "end": iso(NOW + 3660), "cores": "2", "memory": "2Gi",
           "expires": iso(NOW + 300), "placements": [{"node": "n1", "cores": "2", "memory": "2Gi"}]},
          {"id": "2", "start": iso(NOW + 3600), "end": iso(NOW + 7200), "cores": "4", "memory": "4Gi",
           "expires": iso(NOW + 300), "placements": [{"node": "n2", "cores": "4", "memory": "4Gi"}]}]
OSID = "0b8e4c55-1e4c-4a43-9d39-0d6a4cdfb0a1"


def test_booking_entries_of_each_kind_of_plan():
    base = "http://planner"
    offered = {"metadata": {"name": f"os-{OSID}", "namespace": "ns", "labels": {OFFERSET_LABEL: OSID},
                            "annotations": {"execplanner.io/name": "my run"}},
               "spec": {"rejectedOffers": ["2"]}, "status": {"phase": "Offered", "offers": OFFERS}}
    (only,) = web.booking_entries(base, offered, NOW)  # the rejected one is not listed
    assert only["state"] == "OFFERED" and only["name"] == "my run" and only["nodes"] == ["n1"]
    assert only["href"].startswith(f"{base}/sessions/") and only["cancel"] is None and only["log"] is None
    assert (only["cores"], only["memory"], only["expires"]) == ("2", "2Gi", OFFERS[0]["expires"])

    running = {**offered, "spec": {}, "status": {"phase": "Running", "offers": OFFERS, "taskRun": "tr",
                                                 "booking": {**OFFERS[1], "offer": "2"}}}
    (entry,) = web.booking_entries(base, running, NOW)
    assert entry["state"] == "RUNNING" and entry["offer"] == "2" and entry["nodes"] == ["n2"]
    assert entry["cancel"] == entry["href"] and entry["log"] == f"{entry['href']}/log"

    job = {"metadata": {"name": "j1", "namespace": "ns", "labels": {UWS_LABEL: "true"},
                        "annotations": {"execplanner.io/uws-runid": "nightly"}},
           "spec": {}, "status": {"phase": "Booked", "booking": {**OFFERS[0], "offer": "1"}}}
    (entry,) = web.booking_entries(base, job, NOW)
    assert (entry["source"], entry["name"], entry["state"]) == ("uws", "nightly", "QUEUED")
    assert entry["cancel"] == f"{base}/uws/jobs/j1/phase" and entry["log"] is None

    plain = {"metadata": {"name": "by-kubectl", "namespace": "ns"}, "spec": {},
             "status": {"phase": "Completed", "booking": {**OFFERS[0], "cores": "1500m", "memory": 3 * GI}}}
    (entry,) = web.booking_entries(base, plain, NOW)
    assert (entry["source"], entry["state"], entry["cancel"], entry["cores"], entry["memory"]) == \
        ("plan", "COMPLETED", None, "1500m", "3Gi")
    assert web.booking_entries(base, {"metadata": {"name": "x", "namespace": "ns"}, "status": {}}, NOW) == []


async def test_bookings_are_the_callers_own(tmp_path: Path):
    svc = make_service(tmp_path)
    add_plan(svc, "xp-alice", f"os-{OSID}", "u1", labels={OFFERSET_LABEL: OSID},
             status={"phase": "Offered", "offers": OFFERS})
    add_plan(svc, "xp-bob", "job", "u2", labels={UWS_LABEL: "true"},
             status={"phase": "Booked", "booking": {**OFFERS[0], "offer": "1"}})
    client = await client_for(svc)
    try:
        assert (await client.get("/bookings")).status == 401
        alice = (await (await client.get("/bookings", headers=bearer("token-alice"))).json())["bookings"]
        assert [b["offer"] for b in alice] == ["1", "2"] and {b["state"] for b in alice} == {"OFFERED"}
        bob = (await (await client.get("/bookings", headers=bearer("token-bob"))).json())["bookings"]
        assert [(b["source"], b["plan"]) for b in bob] == [("uws", "job")]
    finally:
        await client.close()


def test_openapi_documents_the_pages_reads():
    doc = document()
    for path in ("/nodes", "/calendar/compact", "/calendar/version", "/bookings"):
        assert "get" in doc["paths"][path], path
    for model in ("Nodes", "CompactCalendar", "CalendarVersion", "Bookings", "MyBooking"):
        assert model in doc["components"]["schemas"], model


# -- the development issuer: authorization code with PKCE --------------------------------------------------------

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def call(url: str, data: dict | None = None) -> tuple[int, dict, bytes]:
    opener = urllib.request.build_opener(NoRedirect)
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(urllib.request.Request(url, data=body), timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def issuer(tmp_path: Path):
    server = devidentity.DevIssuer(devidentity.private_key(tmp_path), issuer="https://iss.test", audience="aud-test")
    yield server
    server.close()


def authorize(issuer, verifier: str, **extra) -> tuple[int, dict, bytes]:
    q = {"response_type": "code", "client_id": devidentity.WEB_CLIENT_ID, "redirect_uri": "http://127.0.0.1:9/",
         "state": "s1", "nonce": "n1", "code_challenge": devidentity.pkce_challenge(verifier),
         "code_challenge_method": "S256", **extra}
    return call(f"{issuer.authorization_url}?{urllib.parse.urlencode(q)}")


def code_of(headers: dict) -> str:
    location = urllib.parse.urlsplit(headers["Location"])
    q = dict(urllib.parse.parse_qsl(location.query))
    assert location.netloc == "127.0.0.1:9" and q["state"] == "s1"
    return q["code"]


def test_issuer_signs_in_with_a_code_and_the_verifier(issuer):
    verifier = "v" * 50
    status, _, body = authorize(issuer, verifier)
    assert status == 200 and b'name=user' in body and b"code_challenge" in body  # the form asks who
    status, headers, _ = call(issuer.authorization_url, {
        "response_type": "code", "client_id": devidentity.WEB_CLIENT_ID, "redirect_uri": "http://127.0.0.1:9/",
        "state": "s1", "nonce": "n1", "code_challenge": devidentity.pkce_challenge(verifier),
        "code_challenge_method": "S256", "user": "alice"})
    assert status == 303
    code = code_of(headers)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:9/",
            "client_id": devidentity.WEB_CLIENT_ID, "code_verifier": verifier}
    status, headers, body = call(issuer.token_url, form)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
    tokens = json.loads(body)
    key = issuer.key
    access = jwt.decode(tokens["access_token"], key.public_key(), algorithms=["RS256"], audience="aud-test",
                        issuer="https://iss.test")
    ident = jwt.decode(tokens["id_token"], key.public_key(), algorithms=["RS256"], audience=devidentity.WEB_CLIENT_ID)
    assert access["sub"] == "alice" and ident["nonce"] == "n1" and ident["preferred_username"] == "alice"
    assert call(issuer.token_url, form)[0] == 400  # a code is used once

    discovery = json.loads(call(f"{issuer.base}/.well-known/openid-configuration")[2])
    assert discovery["code_challenge_methods_supported"] == ["S256"] and discovery["token_endpoint"] == issuer.token_url


def test_issuer_refuses_what_pkce_and_loopback_refuse(issuer):
    verifier = "w" * 50
    status, headers, _ = authorize(issuer, verifier, login_hint="bob")  # the signed-in link: at once
    code = code_of(headers)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:9/",
            "client_id": devidentity.WEB_CLIENT_ID, "code_verifier": "x" * 50}
    status, _, body = call(issuer.token_url, form)
    assert status == 400 and json.loads(body)["error"] == "invalid_grant"
    assert call(issuer.token_url, {**form, "code_verifier": verifier})[0] == 400  # refused codes are spent too

    for extra in ({"redirect_uri": "https://evil.example/"}, {"redirect_uri": "http://127.0.0.1@evil.example/"},
                  {"client_id": "other"}):
        status, headers, _ = authorize(issuer, verifier, login_hint="bob", **extra)
        assert status == 400 and "Location" not in headers, extra  # never sent anywhere
    status, headers, _ = authorize(issuer, verifier, login_hint="bob", code_challenge_method="plain")
    assert status == 303 and "error=invalid_request" in headers["Location"]
    status, _, body = authorize(issuer, verifier, login_hint="bad name!")
    assert status == 200 and b"A user name is" in body
