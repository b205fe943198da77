"""Reading what the user types and what the server sends, and showing it compactly, in UTC.

Every quantity and duration is read with execplanner.api.units, the parsers the planner's
engine uses, so the CLI never accepts a text that the server reads differently (say
``--memory 512m``, which Kubernetes reads as 0.512 bytes). What is here besides is the CLI's
own: lenient readers of the server's answers (None or 0 where a value is missing or odd) and
the formatting of tables.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from execplanner.api.units import UnitError, parse_cpu, parse_duration, parse_instant, parse_memory

__all__ = ["UnitError", "cores", "duration_seconds", "nbytes", "parse_interval", "parse_time", "short_duration",
           "show_bytes", "show_cores", "show_number", "show_range", "show_time", "utc_now"]


def duration_seconds(text: Any) -> int:
    """Whole seconds of a duration the server sent (api.units.parse_duration); UnitError if unreadable."""
    return parse_duration(text, "duration")


def short_duration(seconds: float | None) -> str:
    """``1h30m``, ``45s``, ``2d3h``: two units at most."""
    if seconds is None:
        return "-"
    negative = seconds < 0
    seconds = int(round(abs(seconds)))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            value, seconds = divmod(seconds, size)
            parts.append(f"{value}{unit}")
        if len(parts) == 2:
            break
    return ("-" if negative else "") + "".join(parts)


def parse_time(text: Any) -> datetime | None:
    """An RFC 3339 instant (``Z`` or an offset; naive means UTC), or None; whole seconds."""
    if not text or not isinstance(text, str):
        return None
    try:
        return datetime.fromtimestamp(parse_instant(text, "time"), tz=timezone.utc)
    except (UnitError, ValueError, OverflowError, OSError):
        return None


def parse_interval(text: Any) -> tuple[datetime | None, datetime | None]:
    """``start/end`` or ``start/duration`` (ISO 8601) as two instants; Nones when unreadable."""
    if not text or not isinstance(text, str) or "/" not in text:
        return parse_time(text), None
    left, right = text.split("/", 1)
    start = parse_time(left)
    if right[:1] in "Pp":
        try:
            return start, (start + timedelta(seconds=duration_seconds(right))) if start else None
        except UnitError:
            return start, None
    return start, parse_time(right)


def show_time(value: datetime | str | None, *, seconds: bool = False) -> str:
    """``2026-11-24 15:00`` in UTC (tables say so in their headers)."""
    if isinstance(value, str):
        value = parse_time(value)
    if value is None:
        return "-"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""))


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def cores(value: Any) -> float:
    """Cores in a Kubernetes quantity (``500m``, ``2``) or a number; UnitError if unreadable."""
    return parse_cpu(value, "cores") / 1000


def nbytes(value: Any) -> float:
    """Bytes in a Kubernetes quantity (``8Gi``, ``8G``) or a number; UnitError if unreadable."""
    return float(parse_memory(value, "memory"))


def show_number(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def show_cores(value: Any) -> str:
    try:
        return show_number(round(cores(value), 3))
    except UnitError:
        return str(value)


def show_bytes(value: Any) -> str:
    """``8Gi``, ``512Mi``: binary units, at most one decimal."""
    try:
        amount = nbytes(value)
    except UnitError:
        return str(value)
    for unit, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if amount >= size:
            return show_number(round(amount / size, 1)) + unit
    return show_number(amount)


def show_range(lo: Any, hi: Any, fmt=str) -> str:
    """``1-4``, or ``2`` when both ends agree, ``-`` when neither is known."""
    if lo is None and hi is None:
        return "-"
    if lo is None or hi is None or lo == hi:
        return fmt(lo if hi is None else hi)
    return f"{fmt(lo)}-{fmt(hi)}"
