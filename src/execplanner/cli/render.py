"""Output: aligned tables, JSON/YAML dumps, and the progress display shown while waiting."""
from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from typing import Any, Callable, Sequence, TextIO

import yaml


def terminal_width(stream: TextIO | None = None, default: int = 100) -> int:
    """The terminal's width when ``stream`` is one, else $COLUMNS, else ``default``."""
    stream = stream or sys.stdout
    try:
        if stream.isatty():
            return shutil.get_terminal_size((default, 24)).columns
    except (AttributeError, ValueError, OSError):
        pass
    import os
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        return default


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else (text[: max(width - 1, 0)] + "…" if width > 0 else "")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, width: int | None = None,
          shrink: Sequence[int] = (), right: Sequence[int] = ()) -> str:
    """Columns aligned, two spaces apart; over ``width``, the ``shrink`` columns are clipped."""
    cells = [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    if width:
        excess = sum(widths) + 2 * (len(widths) - 1) - width
        for i in sorted(shrink, key=lambda i: -widths[i]):
            if excess <= 0:
                break
            cut = min(excess, widths[i] - max(len(headers[i]), 8))
            if cut > 0:
                widths[i] -= cut
                excess -= cut

    def line(values: Sequence[str]) -> str:
        out = []
        for i, v in enumerate(values):
            v = clip(v, widths[i])
            out.append(v.rjust(widths[i]) if i in right else v.ljust(widths[i]))
        return "  ".join(out).rstrip()

    return "\n".join([line(headers)] + [line(r) for r in cells])


def dump(data: Any, fmt: str) -> str:
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip("\n")
    return json.dumps(data, indent=2, ensure_ascii=False)


class Progress:
    """What we are waiting for, on stderr.

    On a terminal: one line redrawn in place (spinner, text, elapsed time), refreshed by a
    thread so it moves while a request blocks; cleared when done. Elsewhere: a plain line
    each time the text changes, nothing else.
    """

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
    ASCII_FRAMES = "|/-\\"

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, interval: float = 0.1):
        self.stream = stream or sys.stderr
        if tty is None:
            try:
                tty = bool(self.stream.isatty())
            except (AttributeError, ValueError):
                tty = False
        self.tty = tty
        self.clock = clock
        self.interval = interval
        self.started = clock()
        self.text = ""
        self._last_plain = None
        self._frame = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        encoding = (getattr(self.stream, "encoding", None) or "").lower()
        self.frames = self.FRAMES if "utf" in encoding else self.ASCII_FRAMES

    def __enter__(self) -> "Progress":
        if self.tty:
            self._thread = threading.Thread(target=self._spin, name="execplanner-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, text: str) -> None:
        with self._lock:
            self.text = text
            if self.tty:
                self._draw()
            elif text != self._last_plain:
                self._last_plain = text
                self.stream.write(text + "\n")
                self.stream.flush()

    def _draw(self) -> None:
        elapsed = int(self.clock() - self.started)
        frame = self.frames[self._frame % len(self.frames)]
        self._frame += 1
        width = max(terminal_width(self.stream) - 1, 10)
        line = clip(f"{frame} {self.text} ({elapsed}s)", width)
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()

    def _spin(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                if self.text:
                    try:
                        self._draw()
                    except (OSError, ValueError):
                        return

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
            self._thread = None
        if self.tty:
            with self._lock:
                try:
                    self.stream.write("\r\x1b[K")
                    self.stream.flush()
                except (OSError, ValueError):
                    pass
