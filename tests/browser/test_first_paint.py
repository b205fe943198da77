"""The calendar with 1,000 nodes and 10,000 bookings: painted within a second, grouped by node
pool, expandable with the keyboard. The planner here is the real aiohttp application over a fake
calendar source (fake_planner.py, in a process of its own, as a planner runs): 1,000 kwok nodes
and 10,000 ExecutionPlans would take the local control plane minutes to hold. bench/planner_bench.py
measures the API itself against real ones.

EXECPLANNER_UPDATE_DOCS_IMAGES=1 also writes docs/images/calendar.png from the signed-in view."""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, artifact

pytestmark = [pytest.mark.timeout(180)]
NODES, BOOKINGS = 1000, 10_000
FIRST_PAINT_MS = 1000


@pytest.fixture(scope="module")
def big_planner():
    proc = subprocess.Popen([sys.executable, "-m", "tests.browser.fake_planner", str(NODES), str(BOOKINGS)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            proc.kill()
            pytest.fail(f"the fake planner did not start: {proc.stderr.read()[-3000:]}", pytrace=False)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def painted_ms(page) -> float:
    page.wait_for_function("() => window.execplanner && window.execplanner.firstPaintMs !== null")
    return page.evaluate("() => performance.getEntriesByName('execplanner:calendar-painted')[0].startTime")


def test_first_paint_within_a_second_with_1000_nodes(browser, page, big_planner):
    """From navigation to the calendar drawn (every node's use over the next 24 hours, from
    /calendar/compact), in three fresh browser contexts (after one untimed load, as a running
    browser meets a running planner): the median within a second."""
    times = []
    for timed in (False, True, True):
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        p = context.new_page()
        p.goto(f"{big_planner}/")
        if timed:
            times.append(painted_ms(p))
        else:
            painted_ms(p)
        context.close()
    page.goto(f"{big_planner}/")
    times.append(painted_ms(page))
    s = page.evaluate("() => window.execplanner.summary()")
    assert s["nodes"] == NODES and s["groupBy"] == "node.kubernetes.io/pool", s
    assert [g["name"] for g in s["groups"]] == [f"pool-{c}" for c in "abcdefghij"]
    assert statistics.median(times) <= FIRST_PAINT_MS, f"first paint took {times} ms (median over {FIRST_PAINT_MS})"
    print(f"first paint with {NODES} nodes and {BOOKINGS} bookings: {[round(t) for t in times]} ms")

    # Groups open and close from the keyboard; rows are described in words.
    page.focus("#cal-scroll")
    page.keyboard.press("ArrowDown")  # the second group
    page.keyboard.press("Enter")
    s = page.evaluate("() => window.execplanner.summary()")
    assert s["groups"][1] == {"name": "pool-b", "nodes": 100, "open": True} and s["rows"] == 110, s
    tip = page.text_content("#cal-tip")
    assert "pool-b" in tip and "in use" in tip and "UTC" in tip, tip
    page.keyboard.press("ArrowDown")
    assert "node-0100" in page.text_content("#cal-tip")
    button = page.locator("button.group", has_text="pool-a")
    button.focus()
    page.keyboard.press("Enter")
    assert button.get_attribute("aria-expanded") == "true"


def test_signed_in_view_of_a_large_cluster(page, big_planner):
    """The screenshot of the calendar for the docs: signed in (a static token of the fake
    planner), one's bookings named among 10,000, a question's candidate slot drawn."""
    page.context.add_init_script("sessionStorage.setItem('execplanner.session', JSON.stringify("
                                 "{token: 'token-alice', user: 'alice', expires: Date.now() + 3600000}))")
    page.goto(f"{big_planner}/")
    painted_ms(page)
    page.click("button.group:has-text('pool-a')")
    page.fill("#image", "busybox:1.36")
    page.fill("#cores-min", "8")
    page.fill("#memory-min", "32 GiB")
    page.fill("#duration-min", "3 h")
    page.click("#ask-button")
    page.wait_for_selector("[data-answer=YES]")
    s = page.evaluate("() => window.execplanner.summary()")
    assert any(b["name"].startswith("spectra-fit-") for b in s["mine"]) and s["candidates"], s
    page.evaluate("() => document.getElementById('cal-scroll').scrollTo(0, 0)")
    shot = artifact("calendar")
    page.locator("#calendar-section").screenshot(path=str(shot))
    if os.environ.get("EXECPLANNER_UPDATE_DOCS_IMAGES") == "1":
        shutil.copyfile(shot, Path(ROOT) / "docs" / "images" / "calendar.png")
