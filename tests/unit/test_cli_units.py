"""The CLI's parsers and formatters (durations, times, quantities, intervals, tables)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from execplanner.cli import commands, units
from execplanner.cli.render import table


@pytest.mark.parametrize("text, seconds", [("PT1H", 3600), ("PT1H30M", 5400), ("P1DT2H", 93600), ("pt90s", 90),
                                           ("10m", 600), ("9h", 32400), ("60s", 60), ("1h30m", 5400), ("2d", 172800),
                                           ("3600", 3600), ("1.5h", 5400)])
def test_parse_duration(text, seconds):
    assert units.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "forever", "10ms", "h", "-5m"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError):
        units.parse_duration(text)


def test_iso_and_short_durations():
    assert [units.iso_duration(s) for s in (0, 59, 3600, 5400, 93600)] == ["PT0S", "PT59S", "PT1H", "PT1H30M", "P1DT2H"]
    assert [units.short_duration(s) for s in (0, 45, 3600, 5430, 93600, -90)] == ["0s", "45s", "1h", "1h30m", "1d2h", "-1m30s"]


def test_times_and_intervals():
    t = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)
    assert units.parse_time("2026-11-24T15:00:00Z") == t
    assert units.parse_time("2026-11-24T16:00:00+01:00") == t
    assert units.parse_time("nonsense") is None and units.parse_time(None) is None
    assert units.parse_interval("2026-11-24T15:00:00Z/PT2H")[1] == t.replace(hour=17)
    assert units.parse_interval("2026-11-24T15:00:00Z/2026-11-24T16:00:00Z") == (t, t.replace(hour=16))
    assert units.show_time("2026-11-24T16:00:00+01:00") == "2026-11-24 15:00"


def test_quantities():
    assert units.parse_cores("500m") == 0.5 and units.parse_cores("2") == 2
    assert units.parse_bytes("8Gi") == 8 * 2**30 and units.parse_bytes("8G") == 8e9
    assert [units.show_bytes(v) for v in ("8Gi", "512Mi", "1536Mi", 0)] == ["8Gi", "512Mi", "1.5Gi", "0"]
    assert units.show_cores("1500m") == "1.5"
    assert units.show_range(1, 4) == "1-4" and units.show_range(2, 2) == "2" and units.show_range(None, None) == "-"


def test_start_intervals_and_memory_for_offers():
    now = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)
    assert commands.interval("now/2h", now) == "2026-11-24T15:00:00Z/PT2H"
    assert commands.interval("+30m/PT1H", now) == "2026-11-24T15:30:00Z/PT1H"
    assert commands.interval("2026-11-24T16:00:00+01:00/2026-11-24T17:00:00Z", now) == \
        "2026-11-24T15:00:00Z/2026-11-24T17:00:00Z"
    for bad in ("now", "then/2h", "now/later", "2026-11-24T17:00:00Z/2026-11-24T16:00:00Z"):
        with pytest.raises(commands.UsageError):
            commands.interval(bad, now)
    assert [commands.gib(v, "--memory") for v in ("8", "8G", "8Gi", "8GiB", "512Mi", "1Ti")] == [8, 8, 8, 8, 0.5, 1024]


def test_table_aligns_and_clips_only_the_shrinkable_column():
    text = table(["ID", "NAME", "N"], [["a", "a rather long name indeed", 1], ["bbbb", None, 22]], right=[2])
    assert text.splitlines() == ["ID    NAME                        N",
                                 "a     a rather long name indeed   1",
                                 "bbbb  -                          22"]
    clipped = table(["ID", "NAME", "N"], [["a", "a rather long name indeed", 1]], width=20, shrink=[1])
    assert clipped.splitlines()[1] == "a   a rather lon…  1"
