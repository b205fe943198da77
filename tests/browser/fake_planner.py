"""The planner's real aiohttp application (routes, middleware, the web page) over a fake calendar
source, served on loopback from a thread: for the first-paint test with 1,000 nodes and 10,000
bookings, which would take the local control plane minutes to hold as real kwok nodes and
ExecutionPlans (bench/planner_bench.py does that, for the API's own figures).

The fake is tests/unit/planner/fake_service.py's: the engine's own Calendar, filled here
directly (set_node, book), with the plans a few of the bookings belong to, so that the
signed-in user's bookings carry names as they do from the real cache.
"""
from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from aiohttp import web

from execplanner.engine import Resources
from execplanner.planner.http.app import make_app

from ..unit.planner.fake_service import make_service

GI = 1 << 30
NOW_BUCKET = 60
NAMES = ("spectra-fit", "lightcurves", "gaia-xmatch", "mosaic", "sky-sims")  # the signed-in user's plans


def fill(svc, nodes: int, bookings: int, namespace_of_mine: str | None = None) -> None:
    """`nodes` nodes of 16 cores / 64 GiB in pools of 100 (label node.kubernetes.io/pool), one in
    ten with 4 GPUs, and `bookings` bookings of 1-4 cores for 1-6 hours over the next day, at most
    ten to a node so that none is over-committed. On every twelfth node of the first pool, every
    other booking belongs to a plan in `namespace_of_mine` (the signed-in user's); all others to
    other namespaces."""
    cal = svc.cache.calendar
    for name in list(cal.nodes):
        cal.remove_node(name)
    names = [f"node-{i:04d}" for i in range(nodes)]
    for i, name in enumerate(names):
        gpus = 4 if i % 10 == 9 else 0
        cal.set_node(name, Resources(16000, 64 * GI, gpus, 100 * GI, 110),
                     {"kubernetes.io/hostname": name, "node.kubernetes.io/pool": f"pool-{chr(97 + i // 100)}",
                      **({"nvidia.com/gpu.present": "true"} if gpus else {})})
    now = int(time.time()) // NOW_BUCKET * NOW_BUCKET
    for i in range(bookings):
        node = names[i % nodes]
        slot = i // nodes  # 0..9: the booking's place among its node's
        cores, hours = 1 + i % 4, 1 + (i // 7) % 6
        start = now + 300 + slot * 2 * 3600 + (i * 7919) % 3600
        where = i % nodes
        mine = namespace_of_mine is not None and where < 100 and where % 12 == 3 and slot % 2 == 0
        if mine:
            hours = 1 + (i // 7) % 3  # the user's own do not overlap each other
        namespace = namespace_of_mine if mine else f"team-{i % 17}"
        uid = f"uid-{i}"
        cal.book(f"{uid}#1", namespace, [(node, Resources(cores * 1000, cores * 2 * GI, 0, 0, 1))],
                 start, start + hours * 3600)
        if mine:
            key = (namespace, f"{NAMES[slot // 2]}-{where}")
            svc.cache.plans[key] = {"metadata": {"name": key[1], "namespace": namespace, "uid": uid},
                                    "status": {"phase": "Booked"}}
            svc.cache.by_uid[uid] = key


class ServedApp:
    """An aiohttp application on 127.0.0.1 (a free port), in its own thread and event loop."""

    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._app = app
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="fake-planner")
        self.thread.start()
        if not self._started.wait(30) or self._error:
            raise RuntimeError(f"the fake planner did not start: {self._error}")
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.runner = web.AppRunner(self._app, access_log=None)
            self.loop.run_until_complete(self.runner.setup())
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        except BaseException as e:  # noqa: BLE001 (reported to the starting thread)
            self._error = e
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()

    def close(self) -> None:
        async def stop() -> None:
            await self.runner.cleanup()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def serve(tmp_path: Path, nodes: int = 1000, bookings: int = 10_000, mine_user: str | None = "alice",
          **settings) -> tuple[ServedApp, object]:
    """(the served app, its Service): the real routes over a calendar of `nodes` and `bookings`;
    static tokens `token-alice` and `token-bob` sign in (fake_service.STATIC)."""
    svc = make_service(tmp_path, **settings)
    namespace = svc.auth.settings.namespace_template.format(user=mine_user) if mine_user else None
    fill(svc, nodes, bookings, namespace)
    return ServedApp(make_app(svc)), svc


def main() -> None:
    """`python -m tests.browser.fake_planner [nodes] [bookings]`: serve it in this process (its own
    GIL, as a real planner has) and print its URL; runs until killed."""
    import sys
    import tempfile
    nodes = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    bookings = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    served, _ = serve(Path(tempfile.mkdtemp(prefix="fake-planner-")), nodes, bookings)
    print(served.url, flush=True)
    try:
        served.thread.join()
    except KeyboardInterrupt:
        served.close()


if __name__ == "__main__":
    main()
