"""``execplanner calendar``: bookings per node over time, drawn in the terminal.

One row per node, time along x, one character per cell. A cell shows how full the node is
at its fullest moment within the cell (the largest share of cores, memory or GPUs taken by
bookings plus, from now on, the pods execplanner does not manage), and whether one of the
caller's bookings falls in it. Everything fits in the given width.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from execplanner.cli.render import clip, table
from execplanner.cli.units import cores, nbytes, parse_time, short_duration, show_bytes, show_cores, show_time

LEVELS_UNICODE = "·░▒▓█"
LEVELS_ASCII = ".:+*#"
MINE = ("m", "M")  # mine, node at most half full / more than half full
OVER = "!"
NOW_UNICODE, NOW_ASCII = "▼", "v"
TICK = "|"
# Tick spacings to choose from, in seconds: the smallest that leaves room for a label.
STEPS = [300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400]
MIN_CELLS = 10
CELL_SIZES = [60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 14400, 21600, 43200, 86400]


@dataclass
class Booking:
    start: datetime
    end: datetime
    cores: float
    memory: float
    gpus: float
    mine: bool


def _num(value: Any, parse) -> float:
    try:
        return parse(value) if value not in (None, "") else 0.0
    except (ValueError, TypeError):
        return 0.0


def _gpus(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _bookings(node: dict) -> list[Booking]:
    out = []
    for b in node.get("bookings") or []:
        start, end = parse_time(b.get("start")), parse_time(b.get("end"))
        if start is None or end is None or end <= start:
            continue
        out.append(Booking(start, end, _num(b.get("cores"), cores), _num(b.get("memory"), nbytes),
                           _gpus(b.get("gpus")), bool(b.get("mine"))))
    return out


def fill_levels(node: dict, t0: datetime, cell: timedelta, cells: int, now: datetime | None) -> list[tuple[float, bool]]:
    """Per cell: the node's fullest share (0..1, above 1 when over-committed) and whether a
    booking of mine overlaps the cell."""
    alloc = node.get("allocatable") or {}
    used = node.get("used") or {}
    caps = (_num(alloc.get("cores"), cores), _num(alloc.get("memory"), nbytes), _gpus(alloc.get("gpus")))
    base = (_num(used.get("cores"), cores), _num(used.get("memory"), nbytes), _gpus(used.get("gpus")))
    bookings = _bookings(node)

    def share(t: datetime) -> float:
        taken = list(base) if now is None or t >= now else [0.0, 0.0, 0.0]
        for b in bookings:
            if b.start <= t < b.end:
                taken[0] += b.cores
                taken[1] += b.memory
                taken[2] += b.gpus
        worst = 0.0
        for amount, cap in zip(taken, caps):
            if amount > 0:
                worst = max(worst, amount / cap if cap > 0 else 2.0)
        return worst

    out = []
    for i in range(cells):
        cs, ce = t0 + cell * i, t0 + cell * (i + 1)
        # The load is a step function that only rises at a booking's start (or at now, when
        # the foreign pods begin to count): its maximum over the cell is at one of those.
        points = [cs] + [b.start for b in bookings if cs < b.start < ce]
        if now is not None and cs < now < ce:
            points.append(now)
        mine = any(b.mine and b.start < ce and b.end > cs for b in bookings)
        out.append((max(share(t) for t in points), mine))
    return out


def cell_char(level: float, mine: bool, levels: str) -> str:
    if level > 1.0 + 1e-9:
        return OVER
    if mine:
        return MINE[1] if level > 0.5 else MINE[0]
    if level <= 0:
        return levels[0]
    return levels[min(4, 1 + int((level - 1e-9) * 4))]


def _tick_label(t: datetime, step: int) -> str:
    if step >= 86400 or (t.hour == 0 and t.minute == 0):
        return t.strftime("%m-%d")
    return t.strftime("%H:%M")


def _wrap(items: list[str], width: int, indent: str) -> list[str]:
    lines, line = [], ""
    for item in items:
        candidate = item if not line else line + "   " + item
        if line and len(candidate) > width:
            lines.append(line)
            line = indent + item
        else:
            line = candidate
    if line:
        lines.append(line)
    return lines


def draw(doc: dict, width: int, *, unicode: bool = True) -> str:
    """The chart, its time axis and its legend, every line at most ``width`` characters
    (unless the width is below the minimum a chart needs)."""
    t0, t1 = parse_time(doc.get("from")), parse_time(doc.get("to"))
    now = parse_time(doc.get("now"))
    if t0 is None or t1 is None or t1 <= t0:
        raise ValueError(f"the calendar's from/to are unreadable: {doc.get('from')!r} / {doc.get('to')!r}")
    nodes = doc.get("nodes") or []
    levels = LEVELS_UNICODE if unicode else LEVELS_ASCII
    # A node that is not Ready gets a * after its name (and a word in the legend).
    names = [str(n.get("name") or "?") + ("*" if n.get("ready") is False else "") for n in nodes]
    label_w = min(max([len(n) for n in names] + [4]), max(8, width // 4))
    room = max(MIN_CELLS, width - label_w - 1)
    span = (t1 - t0).total_seconds()
    # A round time per cell (15m, 1h, ...) when one fits, so the ticks fall evenly.
    size = next((c for c in CELL_SIZES if span / c <= room), span / room)
    cells = min(room, max(1, math.ceil(span / size - 1e-9)))
    cell = timedelta(seconds=size)
    pad = " " * (label_w + 1)

    lines = [clip(f"{short_duration(span)} from {show_time(t0)} UTC, {len(nodes)} node{'s' if len(nodes) != 1 else ''}, "
                  f"a cell = {short_duration(size)}", max(width, label_w + 1 + cells))]

    # Time axis: labels at round times, far enough apart to be readable.
    step = next((s for s in STEPS if s / cell.total_seconds() >= 7), STEPS[-1])
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    first = epoch + timedelta(seconds=-(-(t0 - epoch).total_seconds() // step) * step)
    label_row, tick_row = [" "] * cells, [" "] * cells
    t = first
    while t < t1:
        col = int((t - t0).total_seconds() / cell.total_seconds())
        if 0 <= col < cells:
            tick_row[col] = TICK
            text = _tick_label(t, step)
            if col + len(text) <= cells and all(c == " " for c in label_row[max(col - 1, 0):col + len(text)]):
                label_row[col:col + len(text)] = list(text)
        t += timedelta(seconds=step)
    if now is not None and t0 <= now < t1:
        tick_row[int((now - t0).total_seconds() / cell.total_seconds())] = NOW_UNICODE if unicode else NOW_ASCII
    lines.append((pad + "".join(label_row)).rstrip())
    lines.append((pad + "".join(tick_row)).rstrip())

    for node, name in zip(nodes, names):
        row = "".join(cell_char(level, mine, levels) for level, mine in fill_levels(node, t0, cell, cells, now))
        lines.append(clip(name, label_w).ljust(label_w) + " " + row)
    if not nodes:
        lines.append("(no nodes)")

    now_mark = NOW_UNICODE if unicode else NOW_ASCII
    le = "≤" if unicode else "<="
    legend = [f"{levels[0]} free", f"{levels[1]} {le}25%", f"{levels[2]} {le}50%", f"{levels[3]} {le}75%",
              f"{levels[4]} >75% full", f"{MINE[0]}/{MINE[1]} mine (node {le}/>50% full)", f"{OVER} over-committed",
              f"{now_mark} now", "full: the most used of cores, memory, GPUs", "other pods count from now on"]
    if any(n.get("ready") is False for n in nodes):
        legend.append("name* not Ready")
    lines.append("")
    lines += [clip(line, max(width, 20)) for line in _wrap(["legend:"] + legend, max(width, 20), "        ")]
    return "\n".join(lines)


def my_bookings(doc: dict) -> tuple[list[str], list[list[str]]]:
    """A table of the caller's bookings, soonest first."""
    rows = []
    for node in doc.get("nodes") or []:
        for b in node.get("bookings") or []:
            if b.get("mine"):
                start, end = parse_time(b.get("start")), parse_time(b.get("end"))
                rows.append((start or datetime.max.replace(tzinfo=timezone.utc), [
                    b.get("name") or "-", node.get("name") or "?", b.get("kind") or "-", show_time(start),
                    show_time(end), show_cores(b.get("cores") or 0), show_bytes(b.get("memory") or 0),
                    str(b.get("gpus") or 0)]))
    rows.sort(key=lambda r: r[0])
    headers = ["NAME", "NODE", "KIND", "START (UTC)", "END (UTC)", "CORES", "MEMORY", "GPUS"]
    return headers, [r for _, r in rows]


def render(doc: dict, width: int, *, unicode: bool = True, table_width: int | None = None) -> str:
    """The chart, then a table of my bookings (clipped to ``table_width`` if given)."""
    out = draw(doc, width, unicode=unicode)
    headers, rows = my_bookings(doc)
    if rows:
        out += "\n\nmy bookings:\n" + table(headers, rows, width=table_width, shrink=[0, 1])
    return out
