"""Tests of the peers the benchmarks compare execplanner with (bench/peers_*.py). They build and
start the peer (Kueue: an 8-minute build the first time) on a cluster of their own, so they run
only when asked for by path: `pytest tests/peers` (`make bench-peers PEER=kueue` runs
test_kueue.py first). `make test` does not collect this folder, and a bare `pytest`
deselects it."""
from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def asked_for(config: pytest.Config) -> bool:
    for arg in config.args:
        path = (Path(config.invocation_params.dir) / str(arg).split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if asked_for(config):
        return
    mine = [item for item in items if HERE in Path(str(item.fspath)).resolve().parents]
    if mine:
        config.hook.pytest_deselected(items=mine)
        items[:] = [item for item in items if item not in mine]
