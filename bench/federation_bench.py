"""`make bench-federation`: the federated question against one site's, in one run.

Three sites, each a planner (their own processes, on one local cluster of its own,
EXECPLANNER_CLUSTER=bench-federation, 50 kwok nodes): site-1 and site-2 as they are, site-3
behind a proxy that delays every answer by BENCH_SLOW_MS (default 300 ms). The federated
questions go to site-1's /federation/accepts, which asks all three within the deadline.

Parts, each BENCH_SECONDS (10) of BENCH_CLIENTS (16) clients asking POST /accepts questions
of a few common sizes, one JSON line each:
- `single`: site-1's own /accepts: answers_per_s, p50_ms, p99_ms, errors.
- `federated`: site-1's /federation/accepts: the same, plus each site's p99 as the federation
  saw it (sites[].ms in the answers) and `overhead_p99_ms` = federated p99 - the slowest site's
  p99 (target <= 20 ms).
- `federated_past_deadline`: site-3 delayed past the deadline (BENCH_DEADLINE_S, 1 s, + 1 s):
  p99_ms (target <= the deadline + 20 ms: the slow site never holds the others up longer), and
  how many answers had site-1 and site-2 answered (all of them, target).
A last line: the targets, met or not.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from execplanner import devidentity, localrun

SECONDS = float(os.environ.get("BENCH_SECONDS", 10))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", 16))
SLOW_MS = float(os.environ.get("BENCH_SLOW_MS", 300))
DEADLINE = float(os.environ.get("BENCH_DEADLINE_S", 1.0))
CLUSTER = {"EXECPLANNER_CLUSTER": "bench-federation", "EXECPLANNER_NODES": os.environ.get("BENCH_NODES", "50"),
           "EXECPLANNER_GPU_NODES": "0"}
ROOT = Path(__file__).resolve().parents[1]
ISSUER, AUDIENCE = "https://issuer.bench.execplanner.io", "execplanner-bench"
SIZES = [(1, "1Gi"), (2, "4Gi"), (4, "8Gi"), (8, "16Gi"), (16, "32Gi")]


def say(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float | None:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1) if values else None


class DelayProxy:
    """Forwards to a planner, answering `delay` seconds late (a far or slow site)."""

    def __init__(self, target: str, delay: float) -> None:
        self.target, self.delay = target, delay
        self.port = localrun.free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.session = aiohttp.ClientSession()

        async def forward(request: web.Request) -> web.Response:
            headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type",
                                                                                  "accept")}
            try:
                body = await request.read()
                await asyncio.sleep(self.delay)
                async with self.session.request(request.method, self.target + request.path_qs, headers=headers,
                                                data=body, allow_redirects=False) as r:
                    return web.Response(status=r.status, body=await r.read(),
                                        content_type=r.content_type if r.content_type else None)
            except (ConnectionResetError, aiohttp.ClientError):  # the asker gave up (its deadline)
                return web.Response(status=502)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.session.close()


async def load(url: str, token: str, seconds: float) -> tuple[list[float], int, list[dict]]:
    """CLIENTS clients asking for `seconds`: latencies (ms), errors, and the federated answers' sites."""
    latencies: list[float] = []
    sites: list[dict] = []
    errors = 0
    stop_at = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def client(i: int, session: aiohttp.ClientSession) -> None:
        nonlocal errors
        n = i
        while time.monotonic() < stop_at:
            cores, memory = SIZES[n % len(SIZES)]
            n += 1
            body = {"tasktype": "uri://docker-container", "taskinfo": {"image": "busybox:1.36"},
                    "resources": {"mincores": cores, "minmemory": memory, "minduration": "1h"}}
            started = time.perf_counter()
            try:
                async with session.post(url, json=body, headers=headers) as r:
                    doc = await r.json()
                    if r.status != 200:
                        errors += 1
                        continue
            except (aiohttp.ClientError, asyncio.TimeoutError):
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            if "sites" in doc:
                sites.append({s["site"]: (s["status"], s["ms"]) for s in doc["sites"]})

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(client(i, session) for i in range(CLIENTS)))
    return latencies, errors, sites


def line(part: str, latencies: list[float], errors: int, seconds: float, **extra) -> dict:
    out = {"part": part, "clients": CLIENTS, "answers_per_s": round(len(latencies) / seconds, 1),
           "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99), "errors": errors, **extra}
    print(json.dumps(out), flush=True)
    return out


async def measure(urls: dict[str, str], proxy: DelayProxy, token: str) -> None:
    await proxy.start()
    try:
        for u in urls.values():  # warm each site (and the slow one's proxy)
            await load(f"{u}/accepts", token, 1)
        lat, err, _ = await load(f"{urls['site-1']}/accepts", token, SECONDS)
        single = line("single", lat, err, SECONDS)
        lat, err, sites = await load(f"{urls['site-1']}/federation/accepts", token, SECONDS)
        per_site = {name: pct([s[name][1] for s in sites if s.get(name, ("", 0))[0] == "answered"], 0.99)
                    for name in ("site-1", "site-2", "site-3")}
        slowest = max(v for v in per_site.values() if v is not None)
        fed = line("federated", lat, err, SECONDS, site_p99_ms=per_site, slow_site_delay_ms=SLOW_MS,
                   overhead_p99_ms=round(pct(lat, 0.99) - slowest, 1), single_p99_ms=single["p99_ms"])
        proxy.delay = DEADLINE + 1.0
        lat, err, sites = await load(f"{urls['site-1']}/federation/accepts", token, SECONDS)
        others = sum(1 for s in sites if s.get("site-1", ("",))[0] == "answered" and
                     s.get("site-2", ("",))[0] == "answered")
        late = line("federated_past_deadline", lat, err, SECONDS, deadline_ms=DEADLINE * 1000,
                    slow_site_delay_ms=proxy.delay * 1000, answers=len(sites), others_answered=others,
                    slow_site_timeouts=sum(1 for s in sites if s.get("site-3", ("",))[0] == "timeout"))
        print(json.dumps({"part": "targets",
                          "overhead_p99_le_20ms": fed["overhead_p99_ms"] <= 20,
                          "past_deadline_p99_le_deadline_plus_20ms": late["p99_ms"] <= DEADLINE * 1000 + 20,
                          "others_always_answered": others == len(sites) > 0,
                          "errors": single["errors"] + fed["errors"] + late["errors"]}), flush=True)
    finally:
        await proxy.stop()


def main() -> None:
    os.environ.update(CLUSTER)
    directory = Path(tempfile.mkdtemp(prefix="execplanner-bench-federation-"))
    say(f"cluster {CLUSTER['EXECPLANNER_CLUSTER']} ({CLUSTER['EXECPLANNER_NODES']} nodes)")
    import subprocess
    subprocess.run([str(ROOT / "cluster" / "up.sh")], check=True, stdout=subprocess.DEVNULL)
    key = devidentity.private_key(directory)
    jwks = localrun.JwksServer(devidentity.jwks(key))
    token = devidentity.mint(key, "bench", issuer=ISSUER, audience=AUDIENCE)
    ports = {name: localrun.free_port() for name in ("site-1", "site-2", "site-3")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    proxy = DelayProxy(urls["site-3"], SLOW_MS / 1000)
    sites = [{"name": "site-1", "url": urls["site-1"]}, {"name": "site-2", "url": urls["site-2"]},
             {"name": "site-3", "url": proxy.url}]
    planners = []
    try:
        for name, port in ports.items():
            sub = directory / name
            sub.mkdir()
            pl = localrun.planner(sub, EXECPLANNER_PLANNER_PORT=str(port), EXECPLANNER_PLANNER_JWT_ISSUER=ISSUER,
                                  EXECPLANNER_PLANNER_JWT_AUDIENCE=AUDIENCE, EXECPLANNER_PLANNER_JWKS_URL=jwks.url,
                                  EXECPLANNER_PLANNER_RATE_LIMIT_PER_MINUTE="0", EXECPLANNER_PLANNER_ACCESS_LOG="false",
                                  EXECPLANNER_SITES=json.dumps(sites),
                                  EXECPLANNER_PLANNER_FEDERATION_DEADLINE_SECONDS=str(DEADLINE))
            planners.append(pl.start(timeout=90))
        say(f"three planners up; site-3 {SLOW_MS:.0f} ms slower; {CLIENTS} clients, {SECONDS:.0f} s a part")
        asyncio.run(measure(urls, proxy, token))
    finally:
        for pl in planners:
            pl.stop()
        jwks.close()
        subprocess.run([str(ROOT / "cluster" / "down.sh"), "--purge"], stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
