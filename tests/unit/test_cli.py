"""The `execplanner` CLI against a small in-process planner that speaks the HTTP contract.

The fake planner (aiohttp, in a thread, on 127.0.0.1 and a free port) implements just
enough of /accepts, /offersets, /sessions, /uws/jobs and /calendar; each test runs the
CLI's main(argv) against it and checks what a user sees: tables, JSON, exit codes, and
that an error is one line on stderr, never a traceback.
"""
from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import threading
import uuid as uuidlib
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from aiohttp import web

from execplanner import cli
from execplanner.cli import commands
from execplanner.cli.render import Progress

TOKEN = "s3cret-token"
UWS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK = "http://www.w3.org/1999/xlink"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def rfc(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def jerror(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


def make_session(name: str, state: str, start: datetime, cores: int = 2, memory: int = 4, offerset: str = "") -> dict:
    sid = str(uuidlib.uuid4())
    return {
        "uuid": sid, "href": f"/sessions/{sid}", "name": name, "created": rfc(NOW - timedelta(minutes=5)),
        "state": state, "expires": rfc(NOW + timedelta(minutes=5)), "messages": [],
        "offerset": {"uuid": offerset, "href": f"/offersets/{offerset}"},
        "executable": {"type": commands.DOCKER_EXECUTABLE, "image": "busybox:1.36"},
        "resources": {"compute": [{"type": commands.SIMPLE_COMPUTE,
                                   "cores": {"requested": {"min": 1, "max": 4}, "offered": {"min": cores, "max": cores}},
                                   "memory": {"requested": {"min": 1, "max": 8}, "offered": {"min": memory, "max": memory}}}]},
        "schedule": {"requested": {"duration": "PT1H"},
                     "executing": {"start": f"{rfc(start)}/{rfc(start + timedelta(hours=1))}", "duration": "PT1H"}},
        "options": [{"type": "uri:enum-value-option", "path": "state", "values": ["ACCEPTED", "REJECTED"]}],
    }


def job_xml(job: dict) -> str:
    results = (f'<uws:results><uws:result id="log" xlink:href="/uws/jobs/{job["id"]}/results/log"/></uws:results>'
               if job["phase"] in ("COMPLETED", "ERROR", "ABORTED") else "<uws:results/>")
    error = ('<uws:errorSummary type="fatal" hasDetail="false"><uws:message>exit code 1</uws:message>'
             '</uws:errorSummary>' if job["phase"] == "ERROR" else "")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<uws:job xmlns:uws="{UWS}" xmlns:xlink="{XLINK}" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.1">'
            f'<uws:jobId>{job["id"]}</uws:jobId><uws:ownerId xsi:nil="true"/><uws:phase>{job["phase"]}</uws:phase>'
            f'<uws:quote>{rfc(NOW + timedelta(minutes=10))}</uws:quote><uws:creationTime>{job["created"]}</uws:creationTime>'
            f'<uws:startTime>{rfc(NOW)}</uws:startTime><uws:endTime xsi:nil="true"/>'
            f'<uws:executionDuration>600</uws:executionDuration><uws:parameters>'
            + "".join(f'<uws:parameter id="{k}">{v}</uws:parameter>' for k, v in job["params"])
            + f'</uws:parameters>{results}{error}</uws:job>')


class FakePlanner:
    """State and handlers of the fake planner; ``requests`` records what the CLI sent."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.offersets: dict[str, dict] = {}
        self.pending_polls = 2
        self.sessions: dict[str, dict] = {}
        self.jobs: dict[str, dict] = {}
        s = make_session("earlier run", "COMPLETED", NOW - timedelta(hours=2))
        s["created"] = rfc(NOW - timedelta(hours=3))
        self.sessions[s["uuid"]] = s
        self.jobs["job-old"] = {"id": "job-old", "phase": "COMPLETED", "created": rfc(NOW - timedelta(hours=1)),
                                "params": [("image", "busybox")], "steps": [], "log": "old output\n"}
        self.calendar_doc: dict | None = None
        self.overrides: dict = {}  # path -> a handler that replaces the usual one

    def app(self) -> web.Application:
        @web.middleware
        async def auth(request: web.Request, handler):
            body = await request.read()
            self.requests.append({"method": request.method, "path": request.path, "query": dict(request.query),
                                  "body": body, "headers": dict(request.headers)})
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                return jerror(401, "missing or invalid bearer token")
            if request.path in self.overrides:
                return await self.overrides[request.path](request)
            return await handler(request)

        app = web.Application(middlewares=[auth])
        r = app.router
        r.add_post("/accepts", self.accepts)
        r.add_post("/offersets", self.create_offerset)
        r.add_get("/offersets/{uuid}", self.get_offerset)
        r.add_get("/sessions", self.list_sessions)
        r.add_post("/sessions/{uuid}", self.update_session)
        r.add_get("/sessions/{uuid}/log", self.session_log)
        r.add_get("/sessions/{uuid}/result", self.session_result)
        r.add_get("/uws/jobs/{id}/results/notebook", self.job_notebook)
        r.add_get("/uws/jobs", self.list_jobs)
        r.add_post("/uws/jobs", self.create_job)
        r.add_get("/uws/jobs/{id}", self.get_job)
        r.add_post("/uws/jobs/{id}/phase", self.job_phase)
        r.add_get("/uws/jobs/{id}/results/log", self.job_log)
        r.add_get("/calendar", self.calendar)
        return app

    async def accepts(self, request):
        body = await request.json()
        image = (body.get("taskinfo") or {}).get("image")
        if not body.get("tasktype"):
            return jerror(400, "tasktype: required")
        res = dict(body.get("resources") or {})
        if image == "too-big":
            return web.json_response({"responseword": "NO", "reponseword": "NO", "servicetype": None,
                                      "serviceinfo": {}, "resources": {}, "start": None,
                                      "reponseinfo": {"reasons": [{"httpcode": 409, "text": "maxcores: no node has 64 cores"}]}})
        offered = {**res, "maxcores": min(int(res.get("maxcores", 4)), 4)}
        return web.json_response({"responseword": "YES", "reponseword": "YES", "servicetype": "uri://docker-uws",
                                  "serviceinfo": {"endpoint": "http://planner.example/uws/jobs"},
                                  "resources": offered, "start": rfc(NOW + timedelta(minutes=30)),
                                  "reponseinfo": {"reasons": []}})

    async def create_offerset(self, request):
        body = await request.json()
        exe = body.get("executable") or {}
        if not exe.get("image") and not exe.get("chart") and not exe.get("location"):
            return jerror(400, "executable.image: required")
        oid = str(uuidlib.uuid4())
        offers = [] if "too-big" in (exe.get("image"), exe.get("chart")) else [
            make_session(body.get("name", ""), "OFFERED", NOW + timedelta(hours=i), cores=4 - i, offerset=oid)
            for i in range(int(body.get("offers", 2)))]
        for o in offers:
            o["executable"] = exe
            if body.get("sessions"):
                o["sessions"] = body["sessions"]
            self.sessions[o["uuid"]] = o
        self.offersets[oid] = {"uuid": oid, "href": f"/offersets/{oid}", "name": body.get("name"),
                               "created": rfc(NOW), "expires": rfc(NOW + timedelta(minutes=5)),
                               "result": "YES" if offers else "NO",
                               "messages": [] if offers else [{"level": "WARN",
                                                               "message": "cores: no node has 64 cores free"}],
                               "offers": offers, "polls": self.pending_polls}
        raise web.HTTPSeeOther(f"/offersets/{oid}")

    async def get_offerset(self, request):
        oset = self.offersets.get(request.match_info["uuid"])
        if oset is None:
            return jerror(404, "no such offer set")
        doc = {k: v for k, v in oset.items() if k != "polls"}
        if oset["polls"] > 0:  # being prepared: no result yet (as older planners: PENDING)
            oset["polls"] -= 1
            doc.pop("result")
            doc.update(offers=[], **({"result": "PENDING"} if oset["polls"] % 2 else {}))
        return web.json_response(doc)

    async def list_sessions(self, request):
        return web.json_response({"sessions": list(self.sessions.values())})

    async def update_session(self, request):
        session = self.sessions.get(request.match_info["uuid"])
        if session is None:
            return jerror(404, "no such session")
        update = (await request.json()).get("update") or {}
        if update.get("type") != "uri:enum-value-update" or update.get("path") != "state":
            return jerror(400, "update.type: expected uri:enum-value-update")
        session["state"] = {"ACCEPTED": "WAITING"}.get(update["value"], update["value"])
        if session["state"] == "WAITING" and session["executable"].get("location"):  # a notebook: its endpoints
            n = session.get("sessions", 1)
            session["endpoints"] = [{"session": i, "url": f"http://os-x-session-{i}.xp-alice.svc:8888/",
                                     "secret": f"os-x-session-{i}-token", "key": "token"} for i in range(1, n + 1)]
            session["endpoint"] = session["endpoints"][0]["url"]
        return web.json_response(session)

    async def session_result(self, request):
        if request.match_info["uuid"] not in self.sessions:
            return jerror(404, "no such session")
        return web.Response(text='{"cells": []}', content_type="application/x-ipynb+json")

    async def job_notebook(self, request):
        if request.match_info["id"] not in self.jobs:
            return web.Response(status=404, text="no such job")
        return web.Response(text='{"cells": [1]}', content_type="application/x-ipynb+json")

    async def session_log(self, request):
        if request.match_info["uuid"] not in self.sessions:
            return jerror(404, "no such session")
        return web.Response(text="session says hello\n")

    async def list_jobs(self, request):
        refs = "".join(f'<uws:jobref id="{j["id"]}" xlink:href="/uws/jobs/{j["id"]}"><uws:phase>{j["phase"]}</uws:phase>'
                       f'<uws:creationTime>{j["created"]}</uws:creationTime></uws:jobref>' for j in self.jobs.values())
        return web.Response(text=f'<?xml version="1.0"?><uws:jobs xmlns:uws="{UWS}" xmlns:xlink="{XLINK}" '
                                 f'version="1.1">{refs}</uws:jobs>', content_type="text/xml")

    async def create_job(self, request):
        form = await request.post()
        params = list(form.items())
        if "image" not in form:
            return web.Response(status=400, text="image: required")
        jid = f"job-{len(self.jobs)}"
        image = form["image"]
        steps = ["QUEUED", "EXECUTING", "ERROR" if image == "failing" else "COMPLETED"]
        self.jobs[jid] = {"id": jid, "phase": "PENDING", "created": rfc(NOW), "params": params, "steps": steps,
                          "log": "hello from the job\n"}
        raise web.HTTPSeeOther(f"/uws/jobs/{jid}")

    async def get_job(self, request):
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.Response(status=404, text="no such job")
        if "WAIT" in request.query and job["steps"]:
            job["phase"] = job["steps"].pop(0)
        return web.Response(text=job_xml(job), content_type="text/xml")

    async def job_phase(self, request):
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.Response(status=404, text="no such job")
        form = await request.post()
        if form.get("PHASE") == "ABORT":
            job["phase"], job["steps"] = "ABORTED", []
        raise web.HTTPSeeOther(f"/uws/jobs/{job['id']}")

    async def job_log(self, request):
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.Response(status=404, text="no such job")
        return web.Response(text=job["log"])

    async def calendar(self, request):
        hours = float(request.query.get("hours", "24"))
        if self.calendar_doc:
            return web.json_response(self.calendar_doc)
        start = NOW.replace(minute=0, second=0)
        return web.json_response({
            "now": rfc(start), "from": rfc(start), "to": rfc(start + timedelta(hours=hours)),
            "nodes": [{"name": "kwok-node-0", "allocatable": {"cores": "16", "memory": "64Gi", "gpus": 0},
                       "used": {"cores": "0", "memory": "0", "gpus": 0},
                       "bookings": [{"start": rfc(start + timedelta(hours=2)), "end": rfc(start + timedelta(hours=4)),
                                     "cores": "4", "memory": "8Gi", "gpus": 0, "mine": True, "name": "my-plan",
                                     "kind": "booked"}]}]})


@pytest.fixture
def planner():
    """The fake planner, running in a thread; yields (base URL, FakePlanner)."""
    fake = FakePlanner()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict = {}

    async def start():
        runner = web.AppRunner(fake.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = runner.addresses[0][1]

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield f"http://127.0.0.1:{holder['port']}", fake
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("EXECPLANNER_URL", "EXECPLANNER_TOKEN", "EXECPLANNER_TOKEN_FILE", "EXECPLANNER_DEBUG", "COLUMNS",
                 "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(commands, "POLL_INTERVAL", 0.01)


class Stream(io.StringIO):
    encoding = "utf-8"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = Stream(), Stream()
    code = cli.main(list(argv), stdout=out, stderr=err)
    stdout, stderr = out.getvalue(), err.getvalue()
    assert "Traceback" not in stderr + stdout
    if code != 0:
        lines = stderr.strip().splitlines()
        assert lines and lines[-1].startswith("execplanner: error: "), stderr
        assert sum(1 for line in lines if line.startswith("execplanner:")) == 1
    return code, stdout, stderr


def against(url: str, *argv: str, token: str = TOKEN) -> tuple[int, str, str]:
    return run("--url", url, "--token", token, *argv)


def table_rows(text: str, header_start: str) -> list[list[str]]:
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[i + 1:]:
        if not line.strip() or line.startswith(("accept one", "messages", "why")):
            break
        rows.append(line.split())
    return rows


def header_columns(line: str) -> list[int]:
    """Where each column starts in a header line (columns are two spaces apart)."""
    cols, prev = [], "  "
    for i, ch in enumerate(line):
        if ch != " " and prev.endswith("  ") or (i == 0 and ch != " "):
            cols.append(i)
        prev = (prev + ch)[-2:]
    return cols


# -- ask ------------------------------------------------------------------------------------
def test_ask_yes_sends_the_note_request_and_shows_the_offer(planner):
    url, fake = planner
    code, out, err = against(url, "ask", "--image", "busybox:1.36", "--cores", "1-8", "--memory", "1G-8G",
                             "--duration", "10m-1h", "--startup", "1h")
    assert code == 0, err
    sent = json.loads(fake.requests[-1]["body"])
    assert fake.requests[-1]["method"] == "POST" and fake.requests[-1]["path"] == "/accepts"
    assert sent == {"tasktype": "uri://docker-container", "taskinfo": {"image": "busybox:1.36"},
                    "resources": {"mincores": 1, "maxcores": 8, "minmemory": "1G", "maxmemory": "8G",
                                  "minduration": "10m", "maxduration": "1h", "minstartup": "0s", "maxstartup": "1h"}}
    assert out.startswith("YES, the planner can run this: uri://docker-uws at http://planner.example/uws/jobs\n")
    assert re.search(r"^earliest start: \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in (30m|29m\d+s)\)$", out, re.M)
    rows = table_rows(out, "RESOURCE")
    assert ["cores", "1-8", "1-4"] in rows
    assert ["memory", "1G-8G", "1G-8G"] in rows


def test_ask_refuses_512m_memory_before_asking(planner):
    """512m is 0.512 bytes as Kubernetes (and the server) reads it: refused here, nothing sent."""
    url, fake = planner
    code, out, err = against(url, "ask", "--image", "busybox:1.36", "--memory", "512m")
    assert code == 2 and out == ""
    assert err == ("execplanner: error: --memory: '512m' is 0.512 bytes: a task needs at least 1Mi of memory "
                   "(m means thousandths of a byte: did you mean 512Mi or 512M?)\n")
    assert not fake.requests
    code, _, err = against(url, "ask", "--image", "busybox:1.36", "--memory", "512Mi")
    assert code == 0, err
    assert json.loads(fake.requests[-1]["body"])["resources"]["minmemory"] == "512Mi"
    assert commands.cores_option("500m") == "500m" and commands.cores_option("2") == 2


def test_ask_no_shows_the_reasons(planner):
    url, _ = planner
    code, out, _ = against(url, "ask", "--image", "too-big", "--cores", "64")
    assert code == 0
    assert out.splitlines()[0] == "NO, the planner cannot run this"
    assert "  - maxcores: no node has 64 cores (409)" in out


def test_ask_helm_and_json_output_is_the_servers_json(planner):
    url, fake = planner
    code, out, _ = against(url, "--output", "json", "ask", "--chart", "nginx", "--repository", "https://charts.example",
                           "--chart-version", "1.2.3")
    assert code == 0
    assert json.loads(fake.requests[-1]["body"])["taskinfo"] == {"chart": "nginx", "repository": "https://charts.example",
                                                                 "version": "1.2.3"}
    answer = json.loads(out)
    assert answer["responseword"] == "YES" and answer["reponseword"] == "YES"


def test_ask_reads_a_yaml_file_and_options_come_after_the_command(planner, tmp_path):
    url, fake = planner
    path = tmp_path / "ask.yaml"
    path.write_text("tasktype: uri://docker-container\ntaskinfo: {image: alpine}\nresources: {mincores: 2}\n")
    code, out, _ = run("ask", "--file", str(path), "--memory", "2G", "--url", url, "--token", TOKEN, "-o", "yaml")
    assert code == 0
    assert json.loads(fake.requests[-1]["body"])["resources"] == {"mincores": 2, "minmemory": "2G", "maxmemory": "2G"}
    assert yaml.safe_load(out)["responseword"] == "YES"


# -- offers, accept -------------------------------------------------------------------------
def test_offers_follows_the_303_waits_while_pending_and_shows_a_table(planner):
    url, fake = planner
    code, out, err = against(url, "offers", "--image", "busybox:1.36", "--name", "my run", "--cores", "1-4",
                             "--memory", "1-8", "--duration", "1h", "--start", "2026-11-24T15:00:00Z/PT2H",
                             "--start", "now/3h", "--env", "A=1", "--count", "2", "--", "sh", "-c", "echo hi")
    assert code == 0, err
    post = next(r for r in fake.requests if r["method"] == "POST")
    sent = json.loads(post["body"])
    assert sent["name"] == "my run" and sent["offers"] == 2
    assert sent["executable"] == {"type": commands.DOCKER_EXECUTABLE, "image": "busybox:1.36",
                                  "entrypoint": ["sh", "-c", "echo hi"], "environment": {"A": "1"}}
    assert sent["resources"]["compute"] == [{"type": commands.SIMPLE_COMPUTE, "cores": {"requested": {"min": 1, "max": 4}},
                                             "memory": {"requested": {"min": 1, "max": 8}}}]
    assert sent["schedule"]["requested"]["duration"] == "PT1H"
    first, second = sent["schedule"]["requested"]["start"]
    assert first == "2026-11-24T15:00:00Z/PT2H" and second.endswith("Z/PT3H")
    # 303 followed, then polled while PENDING: every request carried the token
    gets = [r for r in fake.requests if r["method"] == "GET"]
    assert len(gets) == 3 and all(r["path"].startswith("/offersets/") for r in gets)
    assert all(r["headers"]["Authorization"] == f"Bearer {TOKEN}" for r in fake.requests)
    # not a TTY: the progress display is plain lines, once per change
    assert err.count("waiting for the planner's offers") == 1 and "\r" not in err
    lines = out.splitlines()
    assert lines[0].startswith("offer set ") and '"my run": YES, 2 offers, valid until ' in lines[0]
    header = lines[1]
    assert header.split() == ["#", "SESSION", "STATE", "CORES", "MEMORY", "START", "(UTC)", "END", "(UTC)",
                              "DURATION", "EXPIRES"]
    rows = table_rows(out, "#")
    assert [r[2] for r in rows] == ["OFFERED", "OFFERED"] and [r[3] for r in rows] == ["4", "3"]
    assert rows[0][4] == "4Gi" and rows[0][9] == "1h" and rows[0][10] == "in" and re.fullmatch(r"5m|4m\d+s", rows[0][11])
    # aligned: every row's session column starts where the header's does
    starts = header_columns(header)
    for line in lines[2:4]:
        assert line[starts[1] - 2:starts[1]] == "  " and line[starts[1]] != " "
        assert line[starts[2]:].split()[0] == "OFFERED"
    assert lines[-1] == f"accept one with: execplanner accept {rows[0][1]}"


def test_offers_no_says_why(planner):
    url, _ = planner
    code, out, _ = against(url, "offers", "--image", "too-big")
    assert code == 0
    assert '"too-big": NO, 0 offers' in out.splitlines()[0]
    assert "why:\n  cores: no node has 64 cores free (WARN)" in out


def test_offers_json_is_the_final_offerset(planner):
    url, _ = planner
    code, out, _ = against(url, "-o", "json", "offers", "--image", "busybox:1.36")
    assert code == 0
    doc = json.loads(out)
    assert doc["result"] == "YES" and len(doc["offers"]) == 2


def test_offers_gives_up_waiting_with_one_line(planner):
    url, fake = planner
    fake.pending_polls = 10**6
    code, out, err = against(url, "offers", "--image", "busybox:1.36", "--wait", "0.2")
    assert code == 1 and out == ""
    assert "is still being prepared, PENDING; raise --wait" in err.splitlines()[-1]


def test_accept_posts_the_update_and_shows_the_session(planner):
    url, fake = planner
    offered = make_session("x", "OFFERED", NOW)
    fake.sessions[offered["uuid"]] = offered
    code, out, _ = against(url, "accept", offered["uuid"])
    assert code == 0
    req = fake.requests[-1]
    assert req["method"] == "POST" and req["path"] == f"/sessions/{offered['uuid']}"
    assert json.loads(req["body"]) == {"update": {"type": "uri:enum-value-update", "path": "state", "value": "ACCEPTED"}}
    assert out.splitlines()[0] == f"session {offered['uuid']}: WAITING"
    assert out.splitlines()[2].split()[:2] == [offered["uuid"], "WAITING"]


def test_offers_and_accept_for_a_helm_chart(planner, tmp_path):
    url, fake = planner
    values = tmp_path / "values.yaml"
    values.write_text("workers: 30\n")
    code, out, err = against(url, "offers", "--chart", "gaia", "--repository", "https://charts.example",
                             "--chart-version", "1.0.0", "--values", str(values), "--duration", "9h", "--count", "3")
    assert code == 0, err
    sent = json.loads(next(r for r in fake.requests if r["method"] == "POST")["body"])
    assert sent["executable"] == {"type": "uri://kubernetes-helm", "chart": "gaia", "repository": "https://charts.example",
                                  "version": "1.0.0", "values": {"workers": 30}}
    assert sent["name"] == "gaia" and sent["offers"] == 3 and "resources" not in sent
    assert '"gaia": YES, 3 offers' in out.splitlines()[0]
    # accept --chart: the same question, then the first offer accepted
    fake.requests.clear()
    code, out, err = against(url, "accept", "--chart", "gaia", "--repository", "https://charts.example",
                             "--cores", "200-240")
    assert code == 0, err
    posts = [r for r in fake.requests if r["method"] == "POST"]
    assert [r["path"] for r in posts][0] == "/offersets" and posts[-1]["path"].startswith("/sessions/")
    sent = json.loads(posts[0]["body"])
    assert sent["executable"]["chart"] == "gaia" and sent["resources"]["compute"][0]["cores"] == {
        "requested": {"min": 200, "max": 240}}
    assert json.loads(posts[-1]["body"])["update"]["value"] == "ACCEPTED"
    session = posts[-1]["path"].rsplit("/", 1)[1]
    assert out.splitlines()[0].endswith(f"accepted the first of 2 offers, session {session}: WAITING"), out
    # and with an image, the container's entrypoint after --
    code, out, err = against(url, "accept", "--image", "busybox:1.36", "--", "echo", "hi")
    assert code == 0, err
    sent = json.loads([r for r in fake.requests if r["path"] == "/offersets"][-1]["body"])
    assert sent["executable"]["entrypoint"] == ["echo", "hi"]
    # nothing offered: nothing accepted, one line saying why
    code, out, err = against(url, "accept", "--chart", "too-big")
    assert code == 1 and out == ""
    assert "NO, nothing to accept (cores: no node has 64 cores free (WARN))" in err


def test_ask_offers_and_accept_a_notebook_workshop(planner):
    url, fake = planner
    location = "https://example.org/tutorials/gaia-dr3-intro.ipynb"
    code, out, err = against(url, "ask", "--notebook", location, "--sessions", "30", "--cores", "7",
                             "--memory", "12Gi", "--duration", "2h")
    assert code == 0, err
    sent = json.loads(fake.requests[-1]["body"])
    assert sent["tasktype"] == "uri://jupyter-notebook"
    assert sent["taskinfo"] == {"location": location, "sessions": 30}
    code, out, err = against(url, "offers", "--location", location, "--sessions", "30", "--mode", "interactive",
                             "--image", "quay.io/jupyter/scipy-notebook:2024-05-27", "--cores", "7", "--memory", "12",
                             "--duration", "2h")
    assert code == 0, err
    sent = json.loads(next(r for r in fake.requests if r["path"] == "/offersets")["body"])
    assert sent["executable"] == {"type": commands.NOTEBOOK_EXECUTABLE, "location": location, "mode": "interactive",
                                  "image": "quay.io/jupyter/scipy-notebook:2024-05-27"}
    assert sent["sessions"] == 30 and sent["name"] == "gaia-dr3-intro.ipynb"
    assert "each offer: 30 notebook sessions" in out
    # accepted: each session's URL and the Secret holding its token
    fake.requests.clear()
    code, out, err = against(url, "accept", "--notebook", location, "--sessions", "3")
    assert code == 0, err
    rows = table_rows(out[out.index("SESSION  URL"):], "SESSION ")
    assert [r[0] for r in rows][:4] == ["1", "2", "3", "the"]  # then where the tokens are
    assert rows[0][1:] == ["http://os-x-session-1.xp-alice.svc:8888/", "os-x-session-1-token", "token"]


@pytest.mark.parametrize("argv, words", [
    (["ask", "--mode", "batch", "--image", "x"], "--mode and --sessions go with --notebook"),
    (["offers", "--notebook", "https://e.org/a.ipynb", "--mode", "batch", "--sessions", "2"], "only apply to interactive"),
    (["offers", "--notebook", "https://e.org/a.ipynb", "--chart", "c"], "--notebook or --chart"),
])
def test_notebook_usage_errors(planner, argv, words):
    url, _ = planner
    code, _, err = against(url, *argv)
    assert code == 2 and words in err, err


def test_result_of_a_session_and_of_a_job(planner, tmp_path):
    url, fake = planner
    sid = next(iter(fake.sessions))
    assert against(url, "result", sid)[:2] == (0, '{"cells": []}\n')
    out = tmp_path / "executed.ipynb"
    code, _, err = against(url, "result", "job-old", "--out", str(out))
    assert code == 0 and out.read_text() == '{"cells": [1]}' and str(out) in err
    assert fake.requests[-1]["path"] == "/uws/jobs/job-old/results/notebook"


def test_sessions_show_the_drafts_memory_units(planner):
    session = make_session("x", "OFFERED", NOW)
    session["resources"]["compute"][0]["memory"]["offered"] = {"min": 512, "max": 512, "units": "MiB"}
    session["messages"] = [{"level": "INFO", "message": "booked"}]
    assert commands.session_cells(session)["memory"] == "512Mi"
    assert commands.message_text(session["messages"][0]) == "booked"
    assert commands.message_text("plain text") == "plain text"


def test_accept_unknown_session_is_one_line_404(planner):
    url, _ = planner
    code, out, err = against(url, "accept", "x")
    assert (code, out) == (1, "")
    assert err == "execplanner: error: 404 from POST /sessions/x: no such session\n"


# -- runs, logs, cancel ---------------------------------------------------------------------
def test_runs_lists_sessions_and_uws_jobs_in_one_table(planner):
    url, fake = planner
    code, out, _ = against(url, "runs")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["KIND", "ID", "NAME", "STATE", "CREATED", "(UTC)", "START", "(UTC)", "END", "(UTC)"]
    session = next(iter(fake.sessions.values()))
    assert lines[1].startswith(f"session  {session['uuid']}  earlier run")  # the oldest first
    assert "COMPLETED" in lines[1]
    assert lines[2].startswith("uws-job  job-old") and "COMPLETED" in lines[2]
    assert len({len(lines[0].split("STATE")[0])} | {line.index("COMPLETED") for line in lines[1:]}) == 1


def test_runs_json(planner):
    url, _ = planner
    code, out, _ = against(url, "--output", "json", "runs")
    doc = json.loads(out)
    assert code == 0 and doc["sessions"][0]["name"] == "earlier run"
    assert doc["jobs"] == [{"id": "job-old", "href": "/uws/jobs/job-old", "phase": "COMPLETED", "runId": None,
                            "ownerId": None, "creationTime": rfc(NOW - timedelta(hours=1))}]


def test_logs_of_a_job_and_of_a_session(planner):
    url, fake = planner
    assert against(url, "logs", "job-old")[:2] == (0, "old output\n")
    sid = next(iter(fake.sessions))
    assert against(url, "logs", sid)[:2] == (0, "session says hello\n")
    assert fake.requests[-1]["path"] == f"/sessions/{sid}/log"


def test_logs_of_nothing_names_both_404s(planner):
    url, _ = planner
    code, _, err = against(url, "logs", "nope")
    assert code == 1
    assert err == ("execplanner: error: no session and no UWS job 'nope' (404 from GET /uws/jobs/nope/results/log: "
                   "no such job; 404 from GET /sessions/nope/log: no such session)\n")
    code, _, err = against(url, "logs", "--job", "nope")
    assert err == "execplanner: error: 404 from GET /uws/jobs/nope/results/log: no such job\n"


def test_cancel_a_session_and_abort_a_job(planner):
    url, fake = planner
    sid = next(iter(fake.sessions))
    code, out, _ = against(url, "cancel", sid)
    assert code == 0 and out.startswith(f"session {sid}: CANCELLED")
    assert json.loads(fake.requests[-1]["body"])["update"]["value"] == "CANCELLED"
    code, out, _ = against(url, "cancel", "job-old")
    assert (code, out) == (0, "UWS job job-old: ABORTED\n")
    post = [r for r in fake.requests if r["method"] == "POST"][-1]
    assert post["path"] == "/uws/jobs/job-old/phase" and post["body"] == b"PHASE=ABORT"


# -- run --------------------------------------------------------------------------------------
def test_run_creates_a_job_waits_and_prints_its_log(planner):
    url, fake = planner
    code, out, err = against(url, "run", "--image", "busybox", "--cores", "2", "--memory", "1Gi", "--duration", "10m",
                             "--run-id", "greet", "--", "echo", "hello")
    assert code == 0, err
    post = next(r for r in fake.requests if r["method"] == "POST")
    assert post["body"] == b"image=busybox&cmd=echo&cmd=hello&cores=2&memory=1Gi&duration=600&runId=greet&PHASE=RUN"
    waits = [r for r in fake.requests if r["query"].get("WAIT")]
    assert len(waits) == 3
    assert out == "UWS job job-1: COMPLETED\nhello from the job\n"
    assert "UWS job job-1: QUEUED" in err and "UWS job job-1: EXECUTING" in err


def test_run_that_fails_prints_the_log_and_exits_1(planner):
    url, _ = planner
    code, out, err = against(url, "run", "--image", "failing")
    assert code == 1
    assert out == "UWS job job-1: ERROR\nhello from the job\n"
    assert err.splitlines()[-1] == "execplanner: error: UWS job job-1 ended ERROR: exit code 1"


def test_run_no_wait_prints_the_id(planner):
    url, _ = planner
    assert against(url, "run", "--no-wait", "--image", "busybox")[:2] == (0, "job-1\n")


# -- calendar ---------------------------------------------------------------------------------
def test_calendar_draws_within_the_width(planner):
    url, fake = planner
    code, out, _ = against(url, "calendar", "--hours", "12", "--width", "60")
    assert code == 0
    assert fake.requests[-1]["query"] == {"hours": "12"}
    lines = out.splitlines()
    assert all(len(line) <= 60 for line in lines[:lines.index("my bookings:")])
    row = next(line for line in lines if line.startswith("kwok-node-0 "))
    cells = row[len("kwok-node-0 "):]
    assert len(cells) == 60 - len("kwok-node-0 ")
    # 48 cells fit: 15m a cell; my booking is from +2h to +4h: cells 8..15
    assert cells == "·" * 8 + "m" * 8 + "·" * 32
    assert any(line.startswith("legend:") for line in lines)
    assert "my bookings:" in out and "my-plan" in out


def test_calendar_json(planner):
    url, _ = planner
    code, out, _ = against(url, "-o", "json", "calendar")
    assert code == 0 and json.loads(out)["nodes"][0]["name"] == "kwok-node-0"


def test_calendar_with_an_unreadable_answer_is_one_line(planner):
    url, fake = planner
    fake.calendar_doc = {"from": "yesterday", "to": None, "nodes": []}
    code, _, err = against(url, "calendar")
    assert code == 1 and "unexpected answer from GET /calendar: the calendar's from/to are unreadable" in err


# -- errors -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_planner():
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = run("--url", url, "runs")
    assert (code, out) == (1, "")
    assert err == f"execplanner: error: cannot reach the planner at {url}: connection refused\n"


def test_url_and_token_from_the_environment(planner, monkeypatch):
    url, fake = planner
    monkeypatch.setenv("EXECPLANNER_URL", url)
    monkeypatch.setenv("EXECPLANNER_TOKEN", TOKEN)
    assert run("runs")[0] == 0
    assert fake.requests[-1]["headers"]["Authorization"] == f"Bearer {TOKEN}"


def test_token_file(planner, tmp_path):
    url, fake = planner
    (tmp_path / "token").write_text(TOKEN + "\n")
    assert run("--url", url, "--token-file", str(tmp_path / "token"), "runs")[0] == 0
    code, _, err = run("--url", url, "--token-file", str(tmp_path / "missing"), "runs")
    assert code == 2 and err.startswith("execplanner: error: cannot read the token file ")


def test_401_without_and_with_a_wrong_token(planner):
    url, _ = planner
    code, _, err = run("--url", url, "runs")
    assert code == 1
    assert err == ("execplanner: error: 401 from GET /sessions: missing or invalid bearer token "
                   "(give a token with --token, --token-file or EXECPLANNER_TOKEN)\n")
    code, _, err = against(url, "runs", token="wrong")
    assert code == 1 and err.endswith("(is the token right, and still valid?)\n")


def test_server_error_in_text_xml_or_json_without_error(planner):
    url, fake = planner

    async def text(request):
        return web.Response(status=500, text="boom\nsecond line")

    async def xml(request):
        return web.Response(status=400, content_type="text/xml",
                            text='<?xml version="1.0"?><VOTABLE><INFO name="QUERY_STATUS" value="ERROR">'
                                 "PHASE: expected RUN or ABORT</INFO></VOTABLE>")

    async def bare(request):
        return web.json_response({"status": 503}, status=503)

    async def field(request):
        return web.json_response({"error": "must be a number", "status": 400, "field": "hours"}, status=400)

    fake.overrides = {"/sessions": text, "/uws/jobs/job-old/phase": xml, "/calendar": bare}
    assert against(url, "runs")[2] == "execplanner: error: 500 from GET /sessions: boom second line\n"
    assert against(url, "cancel", "--job", "job-old")[2] == (
        "execplanner: error: 400 from POST /uws/jobs/job-old/phase: PHASE: expected RUN or ABORT\n")
    assert against(url, "calendar")[2] == "execplanner: error: 503 from GET /calendar: Service Unavailable\n"
    fake.overrides = {"/calendar": field}
    assert against(url, "calendar")[2] == "execplanner: error: 400 from GET /calendar: hours: must be a number\n"


def test_timeout(planner):
    url, fake = planner

    async def slow(request):
        await asyncio.sleep(3)
        return web.json_response({"sessions": []})

    fake.overrides = {"/sessions": slow}
    code, _, err = against(url, "--timeout", "0.3", "runs")
    assert code == 1
    assert err == f"execplanner: error: no answer from the planner at {url} within 0.3s (GET /sessions)\n"


@pytest.mark.parametrize("path, answer, words", [
    ("/sessions", {"sessions": "not a list"}, "unexpected answer from GET /sessions: no list of sessions"),
    ("/sessions", "<html>oops</html>", "unexpected answer from GET /sessions: not JSON (text/html: '<html>oops</html>')"),
    ("/uws/jobs", "<jobs/>", "unexpected answer from GET /uws/jobs: <jobs> is not a UWS job list"),
    ("/uws/jobs", "not xml", "unexpected answer from GET /uws/jobs: not XML (syntax error: line 1, column 0)"),
])
def test_unexpected_answers_are_one_line(planner, path, answer, words):
    url, fake = planner

    async def odd(request):
        if isinstance(answer, dict):
            return web.json_response(answer)
        return web.Response(text=answer, content_type="text/html" if answer.startswith("<html") else "text/xml")

    fake.overrides = {path: odd}
    code, _, err = against(url, "runs")
    assert code == 1 and err == f"execplanner: error: {words}\n"


@pytest.mark.parametrize("argv, words", [
    ([], "say what to do: ask, offers"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["--output", "xml", "runs"], "argument -o/--output: invalid choice: 'xml'"),
    (["--timeout", "0", "runs"], "argument --timeout: must be more than 0"),
    (["ask"], "say what to run: --image IMAGE, --chart CHART, --notebook URL or --file"),
    (["ask", "--image", "x", "--chart", "y"], "give --image or --chart, not both"),
    (["ask", "--image", "x", "--cores", "a-b"], "--cores: 'a' is not a Kubernetes quantity"),
    (["ask", "--image", "x", "--duration", "forever"], "--duration: 'forever' is not a duration"),
    (["ask", "--image", "x", "--memory", "512m"], "--memory: '512m' is 0.512 bytes: a task needs at least 1Mi"),
    (["ask", "--image", "x", "--memory", "1Gi-512m"], "did you mean 512Mi or 512M?"),
    (["ask", "--image", "x", "--duration", "0.5s"], "--duration: '0.5s' is shorter than a second"),
    (["ask", "--image", "x", "--startup", "soon"], "--startup: 'soon' is not a duration"),
    (["offers", "--image", "x", "--memory", "512m"], "--memory: '512m' is 0.512 bytes"),
    (["offers", "--image", "x", "--duration", "PT0S"], "--duration: 'PT0S' is shorter than a second"),
    (["run", "--image", "x", "--memory", "512m"], "--memory: '512m' is 0.512 bytes"),
    (["run", "--image", "x", "--cores", "0"], "--cores: '0' is less than a thousandth of a core"),
    (["offers", "--image", "x", "--start", "tomorrow"], "--start: expected START/END or START/DURATION"),
    (["offers", "--image", "x", "--memory", "lots"], "--memory: 'lots' is not a Kubernetes quantity"),
    (["offers", "--image", "x", "--env", "NOVALUE"], "--env: expected NAME=VALUE"),
    (["run"], "the following arguments are required: --image"),
    (["accept"], "say which offer: execplanner accept SESSION"),
    (["accept", "a", "b"], "say which offer: execplanner accept SESSION"),
    (["offers", "--image", "x", "--chart", "y"], "give --image or --chart, not both"),
    (["offers", "--chart", "y", "--env", "A=1"], "a chart has no entrypoint or --env"),
    (["offers", "--image", "x", "--repository", "https://charts.example"], "go with --chart"),
    (["logs", "--job", "--session", "x"], "not allowed with argument"),
    (["--url", "ftp://x", "runs"], "--url: 'ftp://x' is not an http:// or https:// URL"),
])
def test_usage_errors_exit_2_with_one_line(argv, words):
    code, out, err = run(*argv)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and words in err, err


def test_help_and_version_exit_0(capsys):
    assert cli.main(["--version"]) == 0
    assert cli.main(["calendar", "--help"]) == 0
    assert "--hours" in capsys.readouterr().out


def test_internal_errors_are_one_line(monkeypatch):
    def broken(args, ctx):
        raise KeyError("oops")

    monkeypatch.setattr(commands, "cmd_runs", broken)
    code, _, err = run("runs")
    assert code == 1 and err == ("execplanner: error: internal error (KeyError: 'oops'); "
                                 "EXECPLANNER_DEBUG=1 shows the traceback\n")


def test_interrupt_is_one_line(monkeypatch):
    def interrupted(args, ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "cmd_runs", interrupted)
    out, err = Stream(), Stream()
    assert cli.main(["runs"], stdout=out, stderr=err) == 130
    assert err.getvalue() == "execplanner: interrupted\n"


# -- progress display -------------------------------------------------------------------------
def test_progress_redraws_one_line_on_a_tty_and_clears_it():
    stream = Stream()
    with Progress(stream, tty=True, interval=0.01) as p:
        p.update("waiting: PENDING")
        p.update("waiting: still PENDING")
    text = stream.getvalue()
    assert "\n" not in text
    assert text.count("\r\x1b[K") >= 3 and text.endswith("\r\x1b[K")
    assert "waiting: still PENDING (0s)" in text


def test_progress_prints_plain_lines_elsewhere():
    stream = Stream()
    with Progress(stream, tty=False) as p:
        for text in ("a", "a", "b"):
            p.update(text)
    assert stream.getvalue() == "a\nb\n"
