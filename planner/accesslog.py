"""The access log: one JSON line per request, in the shape of the service's other log lines
(service.JsonLines), written in batches.

Why not `logging`: at thousands of answers a second, a LogRecord, the formatter and a write
and flush per request were about 15 % of an answer's CPU. Here a line is one small dict
dumped, and the lines waiting are written together every `interval` seconds (or once `batch`
are waiting), so a crash loses at most that fraction of a second of access lines, never an
application log line. The level of the `execplanner.planner.access` logger still decides
whether there is an access log at all, as does the setting `access_log`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

LOGGER = "execplanner.planner.access"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # as every log line of the service (service.JsonLines)


class AccessLog:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None, interval: float = 0.25,
                 batch: int = 1000) -> None:
        self.enabled = enabled and logging.getLogger(LOGGER).isEnabledFor(logging.INFO)
        self._stream = stream
        self._interval, self._batch = interval, batch
        self._lines: list[str] = []
        self._flush_at: asyncio.TimerHandle | None = None
        self._second, self._stamp = -1, ""

    def _time(self) -> str:
        now = int(time.time())
        if now != self._second:  # formatted once a second, as logging.Formatter.formatTime does it
            self._second, self._stamp = now, time.strftime(TIME_FORMAT, time.localtime(now))
        return self._stamp

    def record(self, method: str, path: str, route: str, status: int, ms: float) -> None:
        if not self.enabled:
            return
        self._lines.append(json.dumps({"time": self._time(), "level": "INFO", "logger": LOGGER,
                                       "message": "request", "method": method, "path": path, "route": route,
                                       "status": status, "ms": ms}))
        if len(self._lines) >= self._batch:
            self.flush()
        elif self._flush_at is None:
            self._flush_at = _later(self._interval, self.flush)

    def flush(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        stream = self._stream or sys.stderr  # looked up late: tests may replace sys.stderr
        try:
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: the lines are lost, the answers are not
            pass


def _later(delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle | None:
    try:
        return asyncio.get_running_loop().call_later(delay, callback)
    except RuntimeError:  # no loop (a synchronous caller): the next record or flush() writes them
        return None
