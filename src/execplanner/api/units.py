"""Parsing and formatting of the units users and Kubernetes write.

Internally the engine only knows integers: millicores, bytes, counts, seconds and
epoch seconds (UTC). Everything is converted here, once, at the edge.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache, wraps
from typing import Any, Callable, TypeVar

import isodate
from kubernetes.utils.quantity import parse_quantity

GIB = 1 << 30
_MEMORY_SUFFIXES = (("Ei", 1 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10),
                    ("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3))
_SHORT_DURATION = re.compile(
    r"^(?:(?P<d>\d+(?:\.\d+)?)d)?(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$"
)
_SHORT_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_BARE_NUMBER = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class UnitError(ValueError):
    """A value that cannot be read; `field` names where it came from (e.g. resources.memory.min)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


T = TypeVar("T")


def _remembered(parse: Callable[[Any, str], T]) -> Callable[[Any, str], T]:
    """Remember answers for text and whole-number inputs: clients send the same few values
    ("4", "8Gi", "PT1H") again and again, and parsing them is most of reading a request."""
    cached = lru_cache(maxsize=4096, typed=True)(parse)

    @wraps(parse)
    def call(value: Any, field: str) -> T:
        return cached(value, field) if type(value) in (str, int) else parse(value, field)
    return call


def _quantity(value: Any, field: str) -> Decimal:
    """A non-negative, finite Kubernetes quantity (strings like 8Gi, 500m; numbers as they are)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise UnitError(field, f"{value!r} is not a Kubernetes quantity")
    try:
        q = parse_quantity(value.strip() if isinstance(value, str) else value)
    except (ValueError, InvalidOperation, TypeError):
        raise UnitError(field, f"{value!r} is not a Kubernetes quantity") from None
    if not q.is_finite():
        raise UnitError(field, f"{value!r} is not a finite quantity")
    if q < 0:
        raise UnitError(field, f"{value!r} is negative")
    return q


def _ceil(q: Decimal) -> int:
    # Kubernetes rounds fractional bytes and millicores up (Quantity.Value / MilliValue).
    return int(q.to_integral_value(rounding="ROUND_CEILING"))


@_remembered
def parse_cpu(value: Any, field: str) -> int:
    """CPU as Kubernetes reads it ("4", "500m", 1.5) -> millicores."""
    return _ceil(_quantity(value, field) * 1000)


@_remembered
def parse_memory(value: Any, field: str) -> int:
    """Memory as Kubernetes reads it -> bytes. "8Gi" = 8*2^30, "8G" = 8*10^9, bare numbers are bytes."""
    return _ceil(_quantity(value, field))


@_remembered
def parse_memory_gib(value: Any, field: str) -> int:
    """Memory as the IVOA ExecutionBroker draft writes it: a bare number means GiB; a suffixed
    string ("8Gi", "8G", "512Mi") is a Kubernetes quantity. -> bytes."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return _ceil(_quantity(value, field) * GIB)
    if isinstance(value, str) and _BARE_NUMBER.match(value.strip()):
        return _ceil(_quantity(value, field) * GIB)
    return parse_memory(value, field)


@_remembered
def parse_count(value: Any, field: str) -> int:
    """A whole, non-negative count (GPUs, pods)."""
    q = _quantity(value, field)
    if q != q.to_integral_value():
        raise UnitError(field, f"{value!r} is not a whole number")
    return int(q)


@_remembered
def parse_duration(value: Any, field: str) -> int:
    """A duration -> whole seconds (fractions round up). Accepts ISO 8601 (PT2H, P1DT2H),
    short forms (10m, 9h, 60s, 1h30m, 2d) and bare numbers (seconds)."""
    return math.ceil(_seconds(value, field))


def _seconds(value: Any, field: str) -> float | Decimal:
    """A duration -> seconds as written (not rounded); see parse_duration."""
    if isinstance(value, timedelta):
        seconds: float | Decimal = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text[:1] in "Pp":
            if not any(c.isdigit() for c in text) or text[-1:] in "Tt":  # "P", "PT", "P1DT": nothing, or a dangling T
                raise UnitError(field, f"{value!r} is not an ISO 8601 duration")
            try:
                parsed = isodate.parse_duration(text.upper())
            except (isodate.ISO8601Error, ValueError):
                raise UnitError(field, f"{value!r} is not an ISO 8601 duration") from None
            except OverflowError:  # (timedelta's limit: P999999999W)
                raise UnitError(field, f"{value!r} is too long a duration") from None
            if not isinstance(parsed, timedelta):
                # Years and months have no fixed length.
                raise UnitError(field, f"{value!r}: years and months are not allowed, use days")
            seconds = parsed.total_seconds()
        elif (m := _SHORT_DURATION.match(text)) and any(m.groupdict().values()):
            seconds = sum(Decimal(v) * _SHORT_UNITS[k] for k, v in m.groupdict().items() if v)
        elif _BARE_NUMBER.match(text):
            seconds = Decimal(text)
        else:
            raise UnitError(field, f"{value!r} is not a duration (use PT2H or 2h)")
    else:
        raise UnitError(field, f"{value!r} is not a duration")
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise UnitError(field, f"{value!r} is not finite")
    if seconds < 0:
        raise UnitError(field, f"{value!r} is negative")
    return seconds


@_remembered
def parse_instant(value: Any, field: str) -> int:
    """An instant -> epoch seconds UTC. ISO 8601 with Z or an offset; naive means UTC;
    numbers are epoch seconds. Sub-second parts are dropped."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise UnitError(field, f"{value!r} is not finite")
        return math.floor(value)
    elif isinstance(value, str):
        try:
            dt = isodate.parse_datetime(value.strip())
        except (isodate.ISO8601Error, ValueError):
            raise UnitError(field, f"{value!r} is not an ISO 8601 date-time") from None
    else:
        raise UnitError(field, f"{value!r} is not a date-time")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return math.floor(dt.timestamp())


# -- the sizes of a task ------------------------------------------------------------------------
# Every way in (the CLI, the planner's HTTP service, the CRD and the operator) reads a task's
# sizes with these, so one text means one size everywhere, and a size no task can have (a
# typo such as 512m, which Kubernetes reads as 0.512 bytes) is refused with the field named
# instead of being rounded up into a question about a 1-byte task.

MIN_TASK_MILLICORES = 1           # 1m: a thousandth of a core
MIN_TASK_MEMORY = 1 << 20         # 1Mi
MIN_TASK_SECONDS = 1              # 1s
# The longest a task can be booked for: the longest activeDeadlineSeconds a pod can have
# (2^31 - 1 s, about 68 years), with which its kubelet stops it at the booking's end.
MAX_TASK_SECONDS = (1 << 31) - 1
MAX_INSTANT = 253402300799        # 9999-12-31T23:59:59Z, the last instant that can be written


@_remembered
def task_cores(value: Any, field: str) -> int:
    """A task's cores -> millicores (as parse_cpu); refused below 1m (a thousandth of a core)."""
    millicores = _quantity(value, field) * 1000
    if millicores < MIN_TASK_MILLICORES:
        raise UnitError(field, f"{value!r} is less than a thousandth of a core (1m): a task needs at least 1m")
    return _ceil(millicores)


@_remembered
def task_memory(value: Any, field: str) -> int:
    """A task's memory -> bytes, as Kubernetes reads it (as parse_memory: bare numbers are
    bytes); refused below 1Mi."""
    return _task_memory(value, field, gib_numbers=False)


@_remembered
def task_memory_gib(value: Any, field: str) -> int:
    """A task's memory as the ExecutionBroker writes it (as parse_memory_gib: bare numbers
    are GiB, suffixed strings Kubernetes quantities) -> bytes; refused below 1Mi."""
    return _task_memory(value, field, gib_numbers=True)


def _task_memory(value: Any, field: str, gib_numbers: bool) -> int:
    bare = (isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)) or \
        (isinstance(value, str) and bool(_BARE_NUMBER.match(value.strip())))
    amount = _quantity(value, field) * (GIB if gib_numbers and bare else 1)
    if amount < MIN_TASK_MEMORY:
        text = value.strip() if isinstance(value, str) else value
        hint = ""
        if isinstance(text, str) and text.endswith("m") and text[:-1]:
            hint = f" (m means thousandths of a byte: did you mean {text[:-1]}Mi or {text[:-1]}M?)"
        elif bare and not gib_numbers and amount > 0:
            hint = " (a bare number is bytes: write a unit, e.g. 512Mi or 8Gi)"
        raise UnitError(field, f"{value!r} is {_bytes_text(amount)}: a task needs at least 1Mi of memory{hint}")
    return _ceil(amount)


@_remembered
def task_duration(value: Any, field: str) -> int:
    """A task's duration -> whole seconds (as parse_duration); refused below 1 second."""
    seconds = _seconds(value, field)
    if seconds < MIN_TASK_SECONDS:
        raise UnitError(field, f"{value!r} is shorter than a second: a task runs for at least 1s")
    if seconds > MAX_TASK_SECONDS:
        raise UnitError(field, f"{value!r} is longer than {MAX_TASK_SECONDS} seconds (about 68 years), the longest "
                               "deadline a task's pod can be given")
    return math.ceil(seconds)


def _bytes_text(amount: Decimal) -> str:
    if amount == amount.to_integral_value():
        n = int(amount)
        return f"{n} byte" + ("" if n == 1 else "s")
    return f"{amount.normalize():f} bytes"


def parse_interval(value: Any, field: str) -> tuple[int, int]:
    """An interval -> (start, end) epoch seconds. ISO 8601 start/end, start/duration or
    duration/end ("2026-11-24T15:00:00Z/PT2H"), or a two-item sequence [start, end]."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        start, end = parse_instant(value[0], f"{field}[0]"), parse_instant(value[1], f"{field}[1]")
    elif isinstance(value, str) and value.count("/") == 1:
        left, right = (part.strip() for part in value.split("/"))
        if left[:1] in "Pp":
            end = parse_instant(right, field)
            start = end - parse_duration(left, field)
        else:
            start = parse_instant(left, field)
            end = start + parse_duration(right, field) if right[:1] in "Pp" else parse_instant(right, field)
    else:
        raise UnitError(field, f"{value!r} is not an interval (start/end or start/duration)")
    if end < start:
        raise UnitError(field, f"{value!r} ends before it starts")
    if end > MAX_INSTANT:
        raise UnitError(field, f"{value!r} ends after {format_instant(MAX_INSTANT)}, the last instant there is")
    return start, end


@lru_cache(maxsize=4096)
def format_cpu(millicores: int) -> str:
    """4000 -> "4", 500 -> "500m"."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


@lru_cache(maxsize=4096)
def format_memory(nbytes: int) -> str:
    """The shortest exact Kubernetes form, binary suffixes first: "8Gi", "512Mi", "8G"; else bytes."""
    best = str(nbytes)
    for suffix, size in _MEMORY_SUFFIXES:
        if nbytes and nbytes % size == 0 and len(text := f"{nbytes // size}{suffix}") < len(best):
            best = text
    return best


@lru_cache(maxsize=4096)
def format_duration(seconds: int) -> str:
    """ISO 8601: 7200 -> "PT2H", 93600 -> "P1DT2H", 0 -> "PT0S"."""
    return isodate.duration_isoformat(timedelta(seconds=seconds)) if seconds else "PT0S"


@lru_cache(maxsize=4096)
def format_instant(epoch: int) -> str:
    """Epoch seconds -> "2026-11-24T15:00:00Z"."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
