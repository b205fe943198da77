"""Assembling and running the planner service: settings, the watch cache, identity, the
app; `python -m execplanner.planner` runs it in the foreground."""
from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import sys

from aiohttp import web

from .accesslog import TIME_FORMAT, AccessLog
from .cache import Cache
from .chartsize import ChartSizer
from .http.app import make_app
from .http.common import Service
from .identity import Authenticator
from execplanner.cluster.kube import Kube, connect
from .metrics import Metrics
from .settings import PlannerSettings

log = logging.getLogger("execplanner.planner")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    """One JSON object per log line (structured logs), with any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, TIME_FORMAT), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


async def build(settings: PlannerSettings) -> Service:
    api = await connect()
    cache = Cache(api, settings.horizon_days)
    metrics = Metrics(cache_age=lambda: cache.age() if cache.synced else -1,
                      nodes=lambda: len(cache.calendar.nodes), bookings=lambda: len(cache.calendar.bookings),
                      searches=lambda: (cache.calendar.offers_searched, cache.calendar.offers_reused))
    return Service(settings=settings, cache=cache, auth=Authenticator(settings), kube=Kube(api), metrics=metrics,
                   charts=ChartSizer(entries=settings.render_cache_entries), access=AccessLog(settings.access_log))


async def serve(settings: PlannerSettings, ready: asyncio.Event | None = None) -> None:
    svc = await build(settings)
    runner = web.AppRunner(make_app(svc), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
    await site.start()  # /healthz answers at once, /readyz once the watches have listed
    log.info("listening", extra={"url": f"http://{settings.host}:{settings.port}"})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await svc.cache.start()
        # The calendar is hundreds of thousands of long-lived objects: keep the collector from
        # walking them on every cycle (a p99 matter; new garbage is still collected).
        gc.collect()
        gc.freeze()
        log.info("cache synced", extra={"nodes": len(svc.cache.calendar.nodes), "plans": len(svc.cache.plans)})
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await runner.cleanup()
        svc.access.flush()
        await svc.cache.stop()
        await svc.kube.api.close()
        if svc.federation is not None:
            await svc.federation.close()


def main() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        settings = PlannerSettings()
    except ValueError as e:
        print(f"execplanner planner: bad settings: {e}", file=sys.stderr)
        sys.exit(2)
    asyncio.run(serve(settings))
