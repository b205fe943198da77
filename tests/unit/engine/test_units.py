import math

import pytest

from execplanner.api.units import (
    UnitError, format_cpu, format_duration, format_instant, format_memory, parse_count, parse_cpu,
    parse_duration, parse_instant, parse_interval, parse_memory, parse_memory_gib,
)

GI = 1 << 30


@pytest.mark.parametrize("value, millicores", [("4", 4000), ("500m", 500), (1.5, 1500), (2, 2000), ("0.1", 100),
                                                ("1.0005", 1001)])
def test_cpu(value, millicores):
    assert parse_cpu(value, "cpu") == millicores


@pytest.mark.parametrize("value, nbytes", [("8Gi", 8 * GI), ("8G", 8 * 10**9), ("512Mi", 512 << 20),
                                           (1024, 1024), ("1k", 1000), ("1.5Gi", 3 * GI // 2)])
def test_memory_reads_like_kubernetes(value, nbytes):
    assert parse_memory(value, "memory") == nbytes


@pytest.mark.parametrize("value, nbytes", [(8, 8 * GI), ("8", 8 * GI), (0.5, GI // 2), ("8Gi", 8 * GI),
                                           ("8G", 8 * 10**9)])
def test_memory_gib_bare_numbers_are_gib(value, nbytes):
    assert parse_memory_gib(value, "memory") == nbytes


@pytest.mark.parametrize("parse", [parse_cpu, parse_memory, parse_memory_gib, parse_count])
@pytest.mark.parametrize("bad", ["8Q", "-1", -1, float("nan"), float("inf"), "", None, True, "abc"])
def test_bad_quantities_name_the_field(parse, bad):
    with pytest.raises(UnitError) as err:
        parse(bad, "resources.memory.min")
    assert str(err.value).startswith("resources.memory.min: ")
    assert err.value.field == "resources.memory.min"


def test_bad_quantity_message():
    with pytest.raises(UnitError, match=r'resources.memory.min: .8Q. is not a Kubernetes quantity'):
        parse_memory("8Q", "resources.memory.min")


def test_count_must_be_whole():
    assert parse_count("2", "gpus") == 2
    with pytest.raises(UnitError, match="whole"):
        parse_count(1.5, "gpus")


@pytest.mark.parametrize("value, seconds", [("PT2H", 7200), ("P1DT2H", 93600), ("10m", 600), ("9h", 32400),
                                            ("60s", 60), ("1h30m", 5400), ("2d", 172800), (90, 90),
                                            ("PT0.5S", 1), ("pt1m", 60)])
def test_durations(value, seconds):
    assert parse_duration(value, "duration") == seconds


@pytest.mark.parametrize("bad", ["P1M", "P1Y", "2 hours", "-5m", "h", "", -3, float("nan"), "PTXH"])
def test_bad_durations(bad):
    with pytest.raises(UnitError) as err:
        parse_duration(bad, "duration.max")
    assert "duration.max" in str(err.value)


def test_instants():
    assert parse_instant("2026-11-24T15:00:00Z", "t") == 1795532400
    assert parse_instant("2026-11-24T16:00:00+01:00", "t") == 1795532400
    assert parse_instant("2026-11-24T15:00:00", "t") == 1795532400  # naive means UTC
    assert parse_instant(1795532400.7, "t") == 1795532400
    for bad in ("tomorrow", "2026-13-01T00:00:00Z", None, float("inf")):
        with pytest.raises(UnitError, match="^windows\\[0\\]"):
            parse_instant(bad, "windows[0]")


def test_intervals():
    start = parse_instant("2026-11-24T15:00:00Z", "t")
    assert parse_interval("2026-11-24T15:00:00Z/PT2H", "w") == (start, start + 7200)
    assert parse_interval("2026-11-24T15:00:00Z/2026-11-24T17:00:00Z", "w") == (start, start + 7200)
    assert parse_interval("PT2H/2026-11-24T17:00:00Z", "w") == (start, start + 7200)
    assert parse_interval(["2026-11-24T15:00:00Z", start + 60], "w") == (start, start + 60)
    for bad in ("2026-11-24T15:00:00Z", "2026-11-24T17:00:00Z/2026-11-24T15:00:00Z", "a/b/c"):
        with pytest.raises(UnitError, match="^w"):
            parse_interval(bad, "w")


def test_formatters_round_trip():
    for m in (4000, 500, 1, 64000):
        assert parse_cpu(format_cpu(m), "c") == m
    assert format_cpu(4000) == "4" and format_cpu(500) == "500m"
    assert format_memory(8 * GI) == "8Gi" and format_memory(512 << 20) == "512Mi"
    assert format_memory(8 * 10**9) == "8G" and format_memory(1536) == "1536"
    for b in (8 * GI, 512 << 20, 8 * 10**9, 0, 1):
        assert parse_memory(format_memory(b), "m") == b
    assert format_duration(7200) == "PT2H" and format_duration(0) == "PT0S"
    for s in (7200, 93600, 61, 0):
        assert parse_duration(format_duration(s), "d") == s
    assert format_instant(1795532400) == "2026-11-24T15:00:00Z"
    assert parse_instant(format_instant(1795532400), "t") == 1795532400
    assert not math.isnan(parse_cpu("1", "c"))
