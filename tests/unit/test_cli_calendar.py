"""`execplanner calendar`'s drawing: cells, columns, widths, legend (no server needed)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from execplanner.cli import calendar

T0 = datetime(2026, 11, 24, 0, 0, tzinfo=timezone.utc)


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def booking(start: float, end: float, cores="1", memory="1Gi", gpus=0, mine=False, name=None, kind="booked") -> dict:
    return {"start": at(start), "end": at(end), "cores": cores, "memory": memory, "gpus": gpus, "mine": mine,
            "name": name, "kind": kind}


def node(name: str, bookings: list[dict], cores="16", memory="64Gi", gpus=0, used=None) -> dict:
    return {"name": name, "allocatable": {"cores": cores, "memory": memory, "gpus": gpus},
            "bookings": bookings, "used": used or {"cores": "0", "memory": "0", "gpus": 0}}


def doc(nodes: list[dict], hours: float = 24, now: float = 0) -> dict:
    return {"now": at(now), "from": at(0), "to": at(hours), "nodes": nodes}


def row_of(text: str, name: str) -> str:
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return line[len(name):].lstrip(" ")  # cells are never blank


def test_mine_and_other_bookings_land_in_the_right_columns():
    # 24h; label 6 + 1 space; width 55 leaves 48 cells: 30m a cell.
    d = doc([node("node-a", [booking(6, 12, cores="4", mine=True, name="mine")]),
             node("node-b", [booking(12, 18, cores="16")])])
    text = calendar.draw(d, 55)
    a, b = row_of(text, "node-a"), row_of(text, "node-b")
    assert len(a) == len(b) == 48
    assert a == "·" * 12 + "m" * 12 + "·" * 24          # 4 of 16 cores: mine, at most half full
    assert b == "·" * 24 + "█" * 12 + "·" * 12          # all 16 cores: full
    assert "a cell = 30m" in text.splitlines()[0]


@pytest.mark.parametrize("cores, char", [("1", "░"), ("4", "░"), ("5", "▒"), ("8", "▒"), ("12", "▓"), ("13", "█"),
                                         ("16", "█"), ("17", "!")])
def test_levels(cores, char):
    text = calendar.draw(doc([node("n", [booking(0, 24, cores=cores)])]), 40)
    assert set(row_of(text, "n")) == {char}


def test_mine_on_a_busy_node_is_capital_and_the_fullest_resource_counts():
    d = doc([node("n", [booking(0, 24, cores="1", memory="40Gi", mine=True)]),
             node("g", [booking(0, 24, cores="1", memory="1Gi", gpus=4)], gpus=4)])
    text = calendar.draw(d, 40)
    assert set(row_of(text, "n")) == {"M"}  # memory 40 of 64Gi: more than half
    assert set(row_of(text, "g")) == {"█"}  # every GPU


def test_a_short_peak_inside_a_cell_shows():
    # 24h in 48 cells of 30m; a 5-minute booking at 10:10 fills cell 20 only.
    text = calendar.draw(doc([node("n", [booking(10 + 10 / 60, 10.25, cores="16")])]), 53)
    assert row_of(text, "n") == "·" * 20 + "█" + "·" * 27


def test_pods_not_from_execplanner_count_from_now_on():
    d = doc([node("n", [], used={"cores": "8", "memory": "1Gi", "gpus": 0})], now=12)
    row = row_of(calendar.draw(d, 53), "n")
    assert row == "·" * 24 + "▒" * 24


@pytest.mark.parametrize("width", [30, 40, 60, 80, 100, 132, 200])
def test_every_line_fits_the_width(width):
    d = doc([node("kwok-node-with-a-rather-long-name-0", [booking(1, 3, mine=True)]),
             node("kwok-gpu-0", [booking(2, 20, cores="8")], gpus=4)], hours=24 * 7, now=5)
    text = calendar.draw(d, width)
    assert max(len(line) for line in text.splitlines()) <= width
    lines = text.splitlines()
    chart = [line for line in lines if line.startswith("kwok")]
    assert len(chart) == 2 and len({len(line) for line in chart}) == 1
    assert any(line.startswith("kwok-") and "…" in line for line in chart) or width >= 160


def test_ruler_labels_sit_on_their_ticks_and_now_is_marked():
    d = doc([node("node-a", [])], hours=24, now=3)
    lines = calendar.draw(d, 55).splitlines()   # 30m a cell
    labels, ticks = lines[1], lines[2]
    pad = len("node-a ")
    for match in re.finditer(r"\S+", labels):
        col = match.start() - pad
        assert ticks[match.start()] in "|▼", match.group()
        hour = 24 if match.group() == "11-25" else (0 if match.group() == "11-24" else int(match.group()[:2]))
        assert col == hour * 2
    assert ticks.index("▼") - pad == 6  # 03:00
    assert labels[pad:pad + 5] == "11-24"  # midnight shows the date


def test_legend_and_ascii():
    d = doc([node("n", [booking(0, 6, cores="4", mine=True), booking(6, 12, cores="16")])], now=1)
    text = calendar.draw(d, 80, unicode=False)
    assert text.isascii()
    assert set(row_of(text, "n")) <= set(".:+*#mM!")
    legend = text[text.index("legend:"):]
    for item in (". free", ": <=25%", "+ <=50%", "* <=75%", "# >75% full", "m/M mine", "! over-committed", "v now"):
        assert item in legend
    unicode_text = calendar.draw(d, 80)
    assert "░ ≤25%" in unicode_text and "▼ now" in unicode_text


def test_my_bookings_table_and_no_nodes():
    d = doc([node("a", [booking(5, 6, mine=True, name="later")]), node("b", [booking(1, 2, mine=True, name="soon"),
                                                                          booking(1, 2, name="theirs")])])
    text = calendar.render(d, 80)
    after = text[text.index("my bookings:"):].splitlines()
    assert after[1].split()[:3] == ["NAME", "NODE", "KIND"]
    assert [line.split()[0] for line in after[2:]] == ["soon", "later"]
    assert "(no nodes)" in calendar.draw(doc([]), 40)


def test_unreadable_times_raise_value_error():
    with pytest.raises(ValueError):
        calendar.draw({"from": "soon", "to": at(1), "nodes": []}, 80)


def test_a_node_that_is_not_ready_is_marked():
    down = node("n2", [])
    down["ready"] = False
    text = calendar.draw(doc([node("n1", []), down]), 60)
    assert any(line.startswith("n2* ") for line in text.splitlines())
    assert "name* not Ready" in text
    assert "not Ready" not in calendar.draw(doc([node("n1", [])]), 60)
