"""The web page in a real browser (headless Chromium) against the real planner and operator on
the local control plane: signing in through the issuer, the calendar with one's own bookings
named and others' usage without names, asking (YES with offers, NO with the reason, errors next
to their fields), booking an offer and seeing it on the calendar, cancelling it, and following a
run to its log. Each test's users are fresh (their namespaces t-web-<user> are deleted after)."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import requests

from .conftest import artifact

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
EB_DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml"
LOCAL = ZoneInfo("Europe/Berlin")  # the browser's time zone (conftest.page)


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_input(t: datetime) -> str:
    """A datetime-local input's value in the browser's time zone."""
    return t.astimezone(LOCAL).strftime("%Y-%m-%dT%H:%M")


def book_via_api(url: str, token: str, name: str, cores: int = 1, duration: str = "PT20M",
                 start_in: timedelta | None = timedelta(hours=1)) -> dict:
    """An offer set asked and its first offer accepted, as a script would: the booked session."""
    headers = {"Authorization": f"Bearer {token}"}
    schedule: dict = {"duration": duration}
    if start_in is not None:
        now = datetime.now(timezone.utc)
        schedule["start"] = [f"{iso(now + start_in)}/{iso(now + start_in + timedelta(hours=2))}"]
    body = {"name": name, "executable": {"type": EB_DOCKER, "image": "busybox:1.36"},
            "resources": {"compute": [{"cores": {"requested": {"min": cores, "max": cores}},
                                       "memory": {"requested": {"min": 1, "max": 1}}}]},
            "schedule": {"requested": schedule}, "offers": 1}
    r = requests.post(f"{url}/offersets", json=body, headers=headers, allow_redirects=False, timeout=30)
    assert r.status_code == 303, r.text
    deadline = time.monotonic() + 30
    while (doc := requests.get(r.headers["Location"], headers=headers, timeout=30).json())["result"] == "PENDING":
        assert time.monotonic() < deadline, doc
        time.sleep(0.5)
    assert doc["result"] == "YES" and doc["offers"], doc
    accept = {"update": {"type": "uri:enum-value-update", "path": "state", "value": "ACCEPTED"}}
    s = requests.post(doc["offers"][0]["href"], json=accept, headers=headers, timeout=30)
    assert s.status_code == 200 and s.json()["state"] == "WAITING", s.text
    return s.json()


def my_bookings(url: str, token: str) -> list[dict]:
    r = requests.get(f"{url}/bookings", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["bookings"]


def sign_in(page, url: str, user: str) -> None:
    """The signed-in link: ?login_hint= sends the browser through the issuer and back, signed in."""
    page.goto(f"{url}/?login_hint={user}")
    page.wait_for_function("() => window.execplanner && window.execplanner.user !== null")
    assert page.text_content("#who") == f"Signed in as {user}"
    calendar_painted(page)


def calendar_painted(page) -> None:
    page.wait_for_function("() => window.execplanner && window.execplanner.firstPaintMs !== null")


def summary(page) -> dict:
    return page.evaluate("() => window.execplanner.summary()")


def wait_for(page, predicate, what: str, timeout: float = 30):
    """Polls predicate(summary) (the page refreshes itself as the planner's state changes)."""
    deadline = time.monotonic() + timeout
    while True:
        s = summary(page)
        if s and predicate(s):
            return s
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {s}")
        page.wait_for_timeout(300)


def fill_task(page, name: str, cores: str = "1", memory: str = "1 GiB", duration: str = "10 min",
              earliest: datetime | None = None) -> None:
    page.fill("#image", "busybox:1.36")
    page.fill("#name", name)
    page.fill("#cores-min", cores)
    page.fill("#memory-min", memory)
    page.fill("#duration-min", duration)
    if earliest is not None:
        page.fill("#earliest", local_input(earliest))


def hover_at(page, node: str, t: float) -> str:
    """Hovers the calendar at a node's row and an instant (epoch seconds): the tooltip's text."""
    index = page.evaluate("(n) => window.execplanner.rowIndex(n)", node)
    assert index >= 0, f"no row for {node}"
    s = summary(page)
    page.locator("#calendar").scroll_into_view_if_needed()
    box = page.locator("#cal-canvas").bounding_box()
    scroll = page.evaluate("() => document.getElementById('cal-scroll').scrollTop")
    x = box["x"] + (t - s["from"]) / (s["to"] - s["from"]) * box["width"]
    y = box["y"] + index * 22 + 11 - scroll
    page.mouse.move(x, y)
    page.wait_for_selector("#cal-tip:not([hidden])")
    return page.text_content("#cal-tip")


# -- signing in ----------------------------------------------------------------------------------------

def test_sign_in_through_the_issuer_with_pkce(page, web_planner, users):
    user = users("sam")
    page.goto(f"{web_planner.url}/")
    calendar_painted(page)
    assert page.text_content("#who") == "Not signed in"
    assert "not signed in: no names are shown" in page.text_content("#cal-status")
    assert page.is_visible("#sign-in") and not page.is_visible("#offers-button")
    grafana = page.locator("#grafana-link")
    assert grafana.is_visible() and grafana.get_attribute("href") == "http://127.0.0.1:3000/d/execplanner"

    page.click("#sign-in")
    page.wait_for_url(re.compile(r"/authorize\?"))
    query = page.url.split("?", 1)[1]
    assert "code_challenge_method=S256" in query and "code_challenge=" in query and "state=" in query
    page.fill("#user", user)
    page.click("button[type=submit]")
    page.wait_for_function("() => window.execplanner && window.execplanner.user !== null")
    assert page.text_content("#who") == f"Signed in as {user}"
    assert "code=" not in page.url and "state=" not in page.url  # the code does not stay in the address
    page.wait_for_selector("#mine-table", state="visible")
    assert page.is_visible("#offers-button")
    token = page.evaluate("() => JSON.parse(sessionStorage.getItem('execplanner.session')).token")
    assert requests.get(f"{web_planner.url}/bookings", headers={"Authorization": f"Bearer {token}"},
                        timeout=30).status_code == 200  # the same identity the API accepts

    page.click("#sign-out")
    assert page.text_content("#who") == "Not signed in"
    sign_in(page, web_planner.url, user)  # the signed-in link the demo prints


# -- the calendar ------------------------------------------------------------------------------------------

def test_calendar_names_own_bookings_and_shows_others_usage_without_names(page, web_planner, users, token):
    url = web_planner.url
    alice, bob = users("alice"), users("bob")
    book_via_api(url, token(bob), name=f"secret-of-{bob}", cores=3)
    book_via_api(url, token(alice), name="alice-analysis", cores=1)
    theirs = my_bookings(url, token(bob))
    assert len(theirs) == 1 and theirs[0]["nodes"], theirs

    sign_in(page, url, alice)
    s = wait_for(page, lambda s: any(b["name"] == "alice-analysis" for b in s["mine"]), "alice's booking, named")
    mine = next(b for b in s["mine"] if b["name"] == "alice-analysis")
    assert mine["start"] > time.time() + 1800, mine  # where it was booked: in an hour
    # Alice's booking is listed with its state and size.
    row = page.locator("#mine-rows tr", has_text="alice-analysis")
    assert "WAITING" in row.text_content() and "1 core" in row.text_content()

    # Bob's booking takes capacity where and when it is ...
    b = theirs[0]
    start, end = (datetime.fromisoformat(b[k].replace("Z", "+00:00")).timestamp() for k in ("start", "end"))
    middle = (start + end) / 2
    node = b["nodes"][0]
    used = page.evaluate("([n, t]) => window.execplanner.usage(n, t, 'cores')", [node, middle])
    before = page.evaluate("([n, t]) => window.execplanner.usage(n, t, 'cores')", [node, start - 1800])
    assert used["used"] >= before["used"] + 3, (used, before)
    tip = hover_at(page, node, middle)
    assert "in use" in tip and "cores" in tip and "UTC" in tip, tip
    # ... and nothing says whose it is.
    text = page.inner_text("body") + tip
    assert bob not in text and "secret-of" not in text, text
    assert all(m["name"] != f"secret-of-{bob}" for m in s["mine"])
    page.locator("#calendar-section").screenshot(path=str(artifact("calendar-own-and-others")))


# -- asking -------------------------------------------------------------------------------------------------

def test_ask_yes_with_offers_no_with_reason_and_errors_next_to_fields(page, web_planner, users):
    url = web_planner.url
    sign_in(page, url, users("carol"))

    fill_task(page, "carol-question", cores="1", memory="1 GiB", duration="10 min")
    page.click("#ask-button")
    page.wait_for_selector("[data-answer=YES]")
    answer = page.text_content("#answer")
    assert "YES" in answer and "It can start" in answer, answer
    s = wait_for(page, lambda s: s["candidates"], "the candidate slot")
    assert s["candidates"][0]["nodes"], s["candidates"]

    page.click("#offers-button")
    page.wait_for_selector(".offer-list li")
    offers = page.locator(".offer-list li")
    assert offers.count() >= 1 and "Book offer 1" in page.text_content(".offer-list")
    s = wait_for(page, lambda s: any(c["label"].startswith("Offer") for c in s["candidates"]), "offers drawn")
    page.screenshot(path=str(artifact("ask-offers")), full_page=True)
    page.click("text=Discard these offers")
    page.wait_for_selector("text=The offers were discarded")

    page.fill("#cores-min", "64")  # more than any node has
    page.click("#ask-button")
    page.wait_for_selector("[data-answer=NO]")
    reasons = page.locator("#answer .reasons li").all_text_contents()
    assert reasons and any(re.search(r"cpu|core", r, re.I) for r in reasons), reasons

    page.fill("#cores-min", "1")
    page.fill("#memory-min", "lots")  # the API's error lands next to the field it names
    page.click("#ask-button")
    page.wait_for_selector("#err-memory-min:not(:empty)")
    assert "resources.minmemory" in page.text_content("#err-memory-min")
    assert page.get_attribute("#memory-min", "aria-invalid") == "true"
    assert page.evaluate("() => document.activeElement.id") == "memory-min"
    page.fill("#memory-min", "1 GiB")
    page.fill("#cores-min", "0")
    page.click("#ask-button")
    page.wait_for_selector("#err-cores-min:not(:empty)")
    assert page.text_content("#err-memory-min") == ""


# -- booking, cancelling, following ----------------------------------------------------------------------------

def test_book_an_offer_and_see_it_on_the_calendar(page, web_planner, users):
    sign_in(page, web_planner.url, users("dave"))
    earliest = datetime.now(timezone.utc) + timedelta(hours=2)
    fill_task(page, "dave-run", cores="2", memory="2 GiB", duration="30 min", earliest=earliest)
    page.click("#offers-button")
    page.wait_for_selector(".offer-list li")
    page.click(".offer-list li >> nth=0 >> button")
    page.wait_for_selector("[data-booked]")
    row = page.locator("#mine-rows tr", has_text="dave-run")
    row.wait_for()
    assert "WAITING" in row.text_content() and "2 cores" in row.text_content()
    # Its start is shown in the viewer's time zone, UTC on hover.
    title = row.locator("time").first.get_attribute("title")
    assert title.endswith("UTC"), title
    s = wait_for(page, lambda s: any(b["name"] == "dave-run" for b in s["mine"]), "dave-run on the calendar")
    mine = next(b for b in s["mine"] if b["name"] == "dave-run")
    assert mine["start"] >= earliest.timestamp() - 60, (mine, earliest)
    assert not any(c["label"].startswith("Offer") for c in s["candidates"])  # the offers were decided
    tip = hover_at(page, mine["node"], (mine["start"] + mine["end"]) / 2)
    assert "Yours: dave-run" in tip, tip


def test_cancel_a_booking(page, web_planner, users, token):
    url, erin = web_planner.url, users("erin")
    book_via_api(url, token(erin), name="erin-maybe", cores=1)
    sign_in(page, url, erin)
    wait_for(page, lambda s: any(b["name"] == "erin-maybe" for b in s["mine"]), "erin's booking")
    row = page.locator("#mine-rows tr", has_text="erin-maybe")
    row.locator("button", has_text="Cancel").click()
    row.locator("button", has_text="Yes, cancel it").click()
    wait_for(page, lambda s: not any(b["name"] == "erin-maybe" for b in s["mine"]), "the booking gone from the calendar")
    page.wait_for_selector("#mine-rows tr:has-text('erin-maybe')", state="detached")
    page.check("#show-finished")
    assert "CANCELLED" in page.locator("#mine-rows tr", has_text="erin-maybe").text_content()
    assert [b["state"] for b in my_bookings(url, token(erin))] == ["CANCELLED"]


def test_follow_a_run_to_its_log(page, web_planner, users, token):
    url, fay = web_planner.url, users("fay")
    book_via_api(url, token(fay), name="fay-now", cores=1, duration="PT1M", start_in=None)  # starts now, runs 3 s
    sign_in(page, url, fay)
    page.check("#show-finished")
    row = page.locator("#mine-rows tr", has_text="fay-now")
    deadline = time.monotonic() + 90
    while "COMPLETED" not in row.text_content():
        assert time.monotonic() < deadline, row.text_content()
        page.wait_for_timeout(500)
    row.locator("button", has_text="Log").click()
    page.wait_for_function("() => !['', 'Reading…'].includes(document.getElementById('log-text').textContent)")
    assert "kwok" in page.text_content("#log-text"), page.text_content("#log-text")
