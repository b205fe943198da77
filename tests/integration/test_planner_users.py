"""Another user's objects are absent: every route of the planner's app, taken from its aiohttp
router (a route added later fails here until it is classified), walked as two users. Alice
makes one of each object (an offer set and its sessions, one accepted and run, with its log; a
UWS job run to COMPLETED with its log, one that ended in ERROR); Bob asks for each of them on
every route that names one and gets 404, exactly where Alice gets her answer; the routes that
name no object answer Bob without showing him anything of Alice's, and anonymous callers get
401 everywhere but the open routes."""
from __future__ import annotations

import re
import secrets
from types import SimpleNamespace

import pytest
import requests

from execplanner.planner.http.app import make_app
from execplanner.planner.settings import PlannerSettings

from .conftest import kubectl, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
EB_DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml"

# Routes that need no user at all, and routes that name no object (the caller's own lists,
# creating, the calendar everyone shares): every other route names an object and is owned.
OPEN = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/openapi.json"),
        ("GET", "/accepts"), ("POST", "/accepts"),
        ("GET", "/"), ("GET", "/web/{asset}")}  # the web page and its assets
# The calendar's reads: anonymous callers may read them too (anonymous_calendar), without any names.
# Routes to what an object may not have (a batch notebook's result): its owner may get a 404
# that says so, never one that says the object is not there.
MAY_BE_EMPTY = {("GET", "/sessions/{uuid}/result"), ("GET", "/uws/jobs/{job}/results/notebook")}
PUBLIC_READ = {("GET", "/calendar"), ("GET", "/calendar/compact"), ("GET", "/calendar/version"), ("GET", "/nodes")}
NO_OBJECT = {("GET", "/offersets"), ("POST", "/offersets"), ("GET", "/sessions"), ("GET", "/uws/jobs"),
             ("POST", "/uws/jobs"), ("GET", "/calendar"), ("GET", "/bookings"), *PUBLIC_READ,
             # federated: the caller's own question or lists, asked of each site with their token
             ("POST", "/federation/accepts"), ("POST", "/federation/offersets"), ("GET", "/federation/sessions")}
PLACEHOLDERS = {"uuid", "job", "property"}


def routes() -> list[tuple[str, str, str]]:
    """(method, canonical path, pattern) of every route the planner serves (HEAD as GET)."""
    app = make_app(SimpleNamespace(settings=PlannerSettings()))  # the routes only: nothing is served
    found = set()
    for route in app.router.routes():
        resource = route.resource
        pattern = getattr(resource, "_pattern", None)
        found.add((route.method, resource.canonical, pattern.pattern if pattern is not None else resource.canonical))
    return sorted(found)


def expand(canonical: str, pattern: str, values: dict[str, str]) -> list[str]:
    """Concrete paths for a route: each {name} from `values`, a {name:a|b|c} once per word."""
    names = re.findall(r"\{(\w+)\}", canonical)
    unknown = set(names) - PLACEHOLDERS
    assert not unknown, f"route {canonical} has placeholders {unknown} this test does not know: teach it"
    paths = [canonical]
    for name in names:
        choice = re.search(rf"\(\?P<{name}>([\w|]+)\)", pattern)
        words = choice.group(1).split("|") if choice and "|" in choice.group(1) else [values[name]]
        paths = [p.replace(f"{{{name}}}", w) for p in paths for w in words]
    return paths


def test_routes_are_all_classified():
    for method, canonical, _ in routes():
        key = ("GET" if method == "HEAD" else method, canonical)
        if "{" not in canonical:
            assert key in OPEN | NO_OBJECT, f"{method} {canonical}: classify it (OPEN or NO_OBJECT) in this test"
    owned = [r for r in routes() if "{" in r[1]]
    assert len(owned) >= 20, owned  # the walk below really walks something


@pytest.fixture
def users():
    made: list[str] = []

    def new(prefix: str) -> str:
        made.append(f"{prefix}-{secrets.token_hex(3)}")
        return made[-1]
    yield new
    for user in made:
        kubectl("delete", "namespace", f"t-xp-{user}", "--ignore-not-found", "--wait=false")


def _phase(url: str, h: dict) -> str:
    return requests.get(f"{url}/phase", headers=h).text


def test_another_users_objects_are_404_on_every_route(planner, tokens, users):
    url = planner.url
    alice, bob = users("alice"), users("bob")
    a, b = tokens.header(alice), tokens.header(bob)

    # Alice's objects: an offer set (one session accepted, run, its log), a UWS job run to
    # COMPLETED (its log), and one that ends in ERROR (too big).
    body = {"name": "mine", "executable": {"type": EB_DOCKER, "image": "busybox:1.36"},
            "resources": {"compute": [{"cores": {"requested": {"min": 1, "max": 1}},
                                       "memory": {"requested": {"min": 1, "max": 1}}}]},
            "schedule": {"requested": {"duration": "PT20S"}}, "offers": 2}
    r = requests.post(f"{url}/offersets", json=body, headers=a, allow_redirects=False)
    assert r.status_code == 303, r.text
    offerset = wait_until(lambda: (d := requests.get(r.headers["Location"], headers=a).json())["result"] != "PENDING"
                          and d, 20, what="alice's offers")
    assert offerset["offers"], offerset
    session = offerset["offers"][0]
    accept = {"update": {"type": "uri:enum-value-update", "path": "state", "value": "ACCEPTED"}}
    assert requests.post(session["href"], json=accept, headers=a).status_code == 200
    r = requests.post(f"{url}/uws/jobs", data={"image": "busybox:1.36", "duration": "60", "PHASE": "RUN"}, headers=a,
                      allow_redirects=False)
    assert r.status_code == 303, r.text
    job = r.headers["Location"].rsplit("/", 1)[1]
    r = requests.post(f"{url}/uws/jobs", data={"image": "busybox:1.36", "cores": "64", "PHASE": "RUN"}, headers=a,
                      allow_redirects=False)
    failed = r.headers["Location"].rsplit("/", 1)[1]

    # While Alice's session is booked, Bob's calendar shows the capacity taken, not whose it is.
    calendar = requests.get(f"{url}/calendar", headers=b)
    assert calendar.status_code == 200
    assert alice not in calendar.text and offerset["uuid"] not in calendar.text and job not in calendar.text

    wait_until(lambda: _phase(f"{url}/uws/jobs/{job}", a) == "COMPLETED", 90, what="alice's job to complete")
    wait_until(lambda: _phase(f"{url}/uws/jobs/{failed}", a) == "ERROR", 30, what="alice's big job to fail")
    wait_until(lambda: requests.get(session["href"], headers=a).json()["state"] == "COMPLETED", 90,
               what="alice's session to complete")
    assert requests.get(f"{session['href']}/log", headers=a).status_code == 200

    walked = 0
    for method, canonical, pattern in routes():
        key = ("GET" if method == "HEAD" else method, canonical)
        if key in OPEN:
            continue
        values = {"uuid": offerset["uuid"] if canonical.startswith("/offersets") else session["uuid"],
                  "job": failed if canonical.endswith("/error") else job}
        for path in expand(canonical, pattern, values):
            # Anonymous callers: 401 on every route but the open ones, and the calendar's reads (no names).
            r = requests.request(method, f"{url}{path}", allow_redirects=False)
            assert r.status_code == (200 if key in PUBLIC_READ else 401), (method, path)
            if key in PUBLIC_READ:
                for mine in (offerset["uuid"], session["uuid"], job, failed, alice):
                    assert mine not in r.text, f"{method} {path} shows anonymous callers {mine!r}"
            if key in NO_OBJECT:
                if method in ("GET", "HEAD"):
                    r = requests.request(method, f"{url}{path}", headers=b)
                    assert r.status_code == 200, (method, path, r.text)
                    for mine in (offerset["uuid"], session["uuid"], job, failed, alice):
                        assert mine not in r.text, f"{method} {path} shows bob {mine!r}: {r.text[:500]}"
                continue
            # Named objects: the same request, Alice's answer, and Bob's 404. Changes are sent
            # in a form the route refuses after finding the object (400), so nothing changes.
            kwargs = {}
            if method == "POST":
                kwargs = ({"json": {"update": {"type": "uri:enum-value-update", "path": "colour", "value": "red"}}}
                          if canonical.startswith("/sessions") else {"data": {"colour": "red"}})
            theirs = requests.request(method, f"{url}{path}", headers=b, allow_redirects=False, **kwargs)
            assert theirs.status_code == 404, (method, path, theirs.status_code, theirs.text)
            if method != "HEAD":
                assert "does not exist" in theirs.json()["error"] or "nothing at" in theirs.json()["error"], theirs.text
            if method == "DELETE":
                continue  # Alice's answer to this one comes last
            mine = requests.request(method, f"{url}{path}", headers=a, allow_redirects=False, **kwargs)
            if key in MAY_BE_EMPTY and mine.status_code == 404:
                assert "does not exist" not in mine.text and "nothing at" not in mine.text, (path, mine.text)
            else:
                assert mine.status_code == (400 if method == "POST" else 200), (method, path, mine.status_code,
                                                                                mine.text)
            walked += 1
    assert walked >= 20, walked

    # Nothing Bob asked changed anything of Alice's; Alice can still delete her own job.
    assert _phase(f"{url}/uws/jobs/{job}", a) == "COMPLETED"
    assert requests.get(session["href"], headers=a).json()["state"] == "COMPLETED"
    assert requests.get(f"{url}/uws/jobs/{failed}/owner", headers=a).text == alice
    r = requests.delete(f"{url}/uws/jobs/{failed}", headers=a, allow_redirects=False)
    assert r.status_code == 303, r.text
    assert requests.get(f"{url}/uws/jobs/{failed}", headers=a).status_code == 404
