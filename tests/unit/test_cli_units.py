"""The CLI's parsers and formatters (durations, times, quantities, intervals, tables)."""
from __future__ import annotations

import ast
from pathlib import Path
from datetime import datetime, timezone

import pytest

from execplanner.api import units as api_units
from execplanner.cli import commands, units
from execplanner.cli.render import table


@pytest.mark.parametrize("text, seconds", [("PT1H", 3600), ("PT1H30M", 5400), ("P1DT2H", 93600), ("pt90s", 90),
                                           ("10m", 600), ("9h", 32400), ("60s", 60), ("1h30m", 5400), ("2d", 172800),
                                           ("3600", 3600), ("1.5h", 5400)])
def test_durations_are_read_as_the_server_reads_them(text, seconds):
    assert commands.seconds_option(text) == seconds == api_units.parse_duration(text, "x")


@pytest.mark.parametrize("text", ["", "P", "PT", "forever", "10ms", "h", "-5m", "0", "0.5s", "PT0S"])
def test_durations_refused_name_the_option(text):
    with pytest.raises(commands.UsageError) as err:
        commands.seconds_option(text, "--duration")
    assert err.value.message.startswith("--duration: "), err.value.message


def test_short_durations_and_iso_from_the_api():
    assert [api_units.format_duration(s) for s in (0, 59, 3600, 5400, 93600)] == \
        ["PT0S", "PT59S", "PT1H", "PT1H30M", "P1DT2H"]
    assert [units.short_duration(s) for s in (0, 45, 3600, 5430, 93600, -90)] == ["0s", "45s", "1h", "1h30m", "1d2h", "-1m30s"]


def test_the_cli_has_no_parsers_of_its_own():
    """One reading of units: the CLI's module keeps formatting only; reading is api.units'."""
    tree = ast.parse(Path(units.__file__).read_text())
    defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    imported = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    assert not defined & {"parse_duration", "parse_bytes", "parse_cores", "iso_duration"}, defined
    assert "re" not in imported, "the CLI's units module parses with regular expressions of its own"
    assert units.cores("500m") == api_units.parse_cpu("500m", "x") / 1000
    assert units.nbytes("8G") == api_units.parse_memory("8G", "x") == 8 * 10**9


def test_times_and_intervals():
    t = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)
    assert units.parse_time("2026-11-24T15:00:00Z") == t
    assert units.parse_time("2026-11-24T16:00:00+01:00") == t
    assert units.parse_time("nonsense") is None and units.parse_time(None) is None
    assert units.parse_interval("2026-11-24T15:00:00Z/PT2H")[1] == t.replace(hour=17)
    assert units.parse_interval("2026-11-24T15:00:00Z/2026-11-24T16:00:00Z") == (t, t.replace(hour=16))
    assert units.show_time("2026-11-24T16:00:00+01:00") == "2026-11-24 15:00"


def test_quantities():
    assert units.cores("500m") == 0.5 and units.cores("2") == 2
    assert units.nbytes("8Gi") == 8 * 2**30 and units.nbytes("8G") == 8e9
    assert [units.show_bytes(v) for v in ("8Gi", "512Mi", "1536Mi", 0)] == ["8Gi", "512Mi", "1.5Gi", "0"]
    assert units.show_cores("1500m") == "1.5" and units.show_cores("lots") == "lots"
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
    # The broker's bare numbers are GiB and go as numbers; quantities go as written, and the
    # server reads them as the CLI did (8G is 8x10^9 bytes, not 8 GiB).
    assert [commands.gib(v) for v in ("8", "0.5", "8G", "8Gi", "512Mi", "1Ti")] == [8, 0.5, "8G", "8Gi", "512Mi", "1Ti"]
    for text in ("8GiB", "lots", "512m", "0"):
        with pytest.raises(commands.UsageError, match="^--memory: "):
            commands.gib(text)


@pytest.mark.parametrize("text, nbytes", [("512Mi", 512 << 20), ("1Mi", 1 << 20), ("8G", 8 * 10**9), ("1.5Gi", 3 << 29)])
def test_memory_options_read_as_the_server_reads_them(text, nbytes):
    assert commands.memory_option(text) == text
    assert api_units.task_memory(text, "x") == api_units.parse_memory(text, "x") == nbytes


def test_512m_is_refused_with_a_clear_message():
    # Kubernetes reads 512m as 0.512 bytes: the CLI says so instead of asking about a 1-byte task.
    with pytest.raises(commands.UsageError) as err:
        commands.memory_option("512m")
    assert err.value.message == ("--memory: '512m' is 0.512 bytes: a task needs at least 1Mi of memory "
                                 "(m means thousandths of a byte: did you mean 512Mi or 512M?)")
    with pytest.raises(commands.UsageError, match="--memory: '1000' is 1000 bytes: a task needs at least 1Mi"):
        commands.memory_option("1000")


def test_table_aligns_and_clips_only_the_shrinkable_column():
    text = table(["ID", "NAME", "N"], [["a", "a rather long name indeed", 1], ["bbbb", None, 22]], right=[2])
    assert text.splitlines() == ["ID    NAME                        N",
                                 "a     a rather long name indeed   1",
                                 "bbbb  -                          22"]
    clipped = table(["ID", "NAME", "N"], [["a", "a rather long name indeed", 1]], width=20, shrink=[1])
    assert clipped.splitlines()[1] == "a   a rather lon…  1"
