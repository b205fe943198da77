"""The load process of `make bench-planner`: CLIENTS concurrent clients asking POST /accepts
for SECONDS over keep-alive connections. Prints one JSON line: answers, errors, latencies (ms).

    python bench/planner_load.py <url> <token> <clients> <seconds> [mix|distinct]

`mix` (the default) draws from a spread of common sizes, so the same question comes again
within a second; `distinct` makes (nearly) every question one not asked before, so that
none is answered from the planner's reuse of an answer (Calendar.offers).
"""
from __future__ import annotations

import asyncio
import json
import random
import sys
import time

import aiohttp


def question(rng: random.Random, distinct: bool = False) -> dict:
    """A spread of sizes (1-12 cores up to twice that, 1-32 GiB up to twice that), lengths (1 h
    to 2 days) and start constraints: 80 % within a minute, ten minutes or an hour (distinct:
    within a number of seconds up to an hour), 20 % any time in a window of the next four days."""
    cores = rng.choice([1, 2, 4, 8, 12])
    memory = rng.choice([1, 2, 8, 16, 32])
    hours = rng.choice([1, 2, 6, 24])
    ask = {"tasktype": "uri://docker-container", "taskinfo": {"image": "registry.k8s.io/pause:3.10"},
           "resources": {"mincores": cores, "maxcores": cores * 2, "minmemory": f"{memory}Gi",
                         "maxmemory": f"{memory * 2}Gi", "minduration": f"{hours}h", "maxduration": f"{hours * 2}h"}}
    if rng.random() < 0.8:  # most ask to start soon
        ask["resources"]["maxstartup"] = f"{rng.randint(60, 3600)}s" if distinct else rng.choice(["60s", "10m", "1h"])
    else:  # some any time in the next days
        ask["resources"]["minstartup"] = f"{rng.randint(0, 48)}h"
        ask["resources"]["maxstartup"] = f"{rng.randint(49, 96)}h"
    return ask


def bodies(seed: int, distinct: bool, clients: int) -> list[str]:
    """One client's questions, asked in turn (made before the clock starts). Distinct: more
    than one client asks in a run on this machine, so none comes round again."""
    rng = random.Random(seed)
    return [json.dumps(question(rng, distinct)) for _ in range(64 + 60_000 // clients if distinct else 64)]


async def client(session: aiohttp.ClientSession, url: str, until: float, bodies: list[str], out: dict) -> None:
    i = 0
    while time.perf_counter() < until:
        started = time.perf_counter()
        try:
            async with session.post(f"{url}/accepts", data=bodies[i % len(bodies)],
                                    headers={"Content-Type": "application/json"}) as r:
                body = await r.json()
                ok = r.status == 200 and body.get("responseword") in ("YES", "NO")
                why = f"HTTP {r.status}: {body.get('error')}" if not ok else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            ok, why = False, f"{type(e).__name__}: {e}"
        if why:
            out.setdefault("why", {}).setdefault(why[:120], 0)
            out["why"][why[:120]] += 1
        out["latencies"].append((time.perf_counter() - started) * 1000)
        out["answers" if ok else "errors"] += 1
        i += 1


async def run(url: str, token: str, clients: int, seconds: float, mode: str = "mix") -> dict:
    out = {"answers": 0, "errors": 0, "latencies": []}
    connector = aiohttp.TCPConnector(limit=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        # Warm the connections and the planner's JWKS before the clock starts.
        await asyncio.gather(*(client(session, url, time.perf_counter() + 0.5, bodies(1000 + c, False, clients),
                                      {"answers": 0, "errors": 0, "latencies": []}) for c in range(clients)))
        asked = [bodies(c, mode == "distinct", clients) for c in range(clients)]
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(client(session, url, until, asked[c], out) for c in range(clients)))
        elapsed = time.perf_counter() - started
    lat = sorted(out["latencies"])
    return {"clients": clients, "questions": mode, "answers_per_s": round(out["answers"] / elapsed, 1),
            "p50_ms": round(lat[len(lat) // 2], 2) if lat else None,
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2) if lat else None,
            "errors": out["errors"], "answers": out["answers"], **({"error_kinds": out["why"]} if out.get("why") else {})}


if __name__ == "__main__":
    url, token, clients, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    mode = sys.argv[5] if len(sys.argv) > 5 else "mix"
    if mode not in ("mix", "distinct"):
        sys.exit(f"questions must be mix or distinct, not {mode!r}")
    print(json.dumps(asyncio.run(run(url, token, clients, seconds, mode))), flush=True)
