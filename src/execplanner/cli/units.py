"""Small parsers and formatters: durations, instants, intervals, Kubernetes quantities.

Self-contained on purpose (the CLI must not depend on the planner's engine): what the user
types is checked here, and what the server sends is shown compactly, in UTC.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

_ISO_DURATION = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")
_SHORT_DURATION = re.compile(r"^(?:(?P<d>\d+(?:\.\d+)?)d)?(?:(?P<h>\d+(?:\.\d+)?)h)?"
                             r"(?:(?P<m>\d+(?:\.\d+)?)m(?!s))?(?:(?P<s>\d+(?:\.\d+)?)s)?$")
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> float:
    """Seconds in ``PT1H30M``, ``1h30m``, ``10m``, ``90s``, ``2d`` or a plain number of seconds."""
    t = str(text).strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        return float(t)
    match = _ISO_DURATION.match(t.upper()) if t[:1] in "Pp" else _SHORT_DURATION.match(t.lower())
    if not t or not match or not any(match.groupdict().values()) or t.upper() in ("P", "PT"):
        raise ValueError(f"not a duration: {text!r} (try 10m, 1h30m, 90s or PT1H)")
    return sum(float(v) * _UNIT_SECONDS[k] for k, v in match.groupdict().items() if v)


def iso_duration(seconds: float) -> str:
    """``PT1H30M`` for 5400."""
    seconds = int(round(seconds))
    if seconds <= 0:
        return "PT0S"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    if hours or minutes or secs:
        out += "T" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return out


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
    """An RFC 3339 instant (``Z`` or an offset; naive means UTC), or None."""
    if not text or not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def parse_interval(text: Any) -> tuple[datetime | None, datetime | None]:
    """``start/end`` or ``start/duration`` (ISO 8601) as two instants; Nones when unreadable."""
    if not text or not isinstance(text, str) or "/" not in text:
        return parse_time(text), None
    left, right = text.split("/", 1)
    start = parse_time(left)
    if right[:1] in "Pp":
        try:
            return start, (start + timedelta(seconds=parse_duration(right))) if start else None
        except ValueError:
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


_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGTPE]i?|[kmgtpe]|)(B?)$", re.IGNORECASE)
_MEMORY_FACTORS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15, "e": 1e18,
                   "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40, "pi": 2**50, "ei": 2**60}


def parse_cores(value: Any) -> float:
    """Cores from a Kubernetes quantity (``500m``, ``2``) or a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _CPU.match(str(value).strip())
    if not match:
        raise ValueError(f"not a number of cores: {value!r}")
    return float(match.group(1)) / (1000 if match.group(2) else 1)


def parse_bytes(value: Any) -> float:
    """Bytes from a Kubernetes quantity (``8Gi``, ``512Mi``), the note's ``8G`` or a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _MEMORY.match(str(value).strip())
    if not match:
        raise ValueError(f"not an amount of memory: {value!r}")
    return float(match.group(1)) * _MEMORY_FACTORS[match.group(2).lower()]


def show_number(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def show_cores(value: Any) -> str:
    try:
        return show_number(round(parse_cores(value), 3))
    except ValueError:
        return str(value)


def show_bytes(value: Any) -> str:
    """``8Gi``, ``512Mi``: binary units, at most one decimal."""
    try:
        amount = parse_bytes(value)
    except ValueError:
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
