"""Sizing a helm chart for the planner's answers: render it (helm template, as the operator
will), check its images against the allowlist, and count its footprint over the nodes the
cache knows. Renders are remembered for a few minutes per chart and values, so repeated
questions about one chart cost one helm run."""
from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from execplanner.cluster import allowlist, charts
from execplanner.engine import Calendar

TTL = 300.0


class Refused(Exception):
    """The chart cannot be run here; the message says why (helm's own message for renders)."""


class ChartSizer:
    def __init__(self, cfg: charts.ChartSettings | None = None) -> None:
        self.cfg = cfg or charts.ChartSettings()
        self._memo: dict[str, tuple[float, list[dict[str, Any]] | Refused]] = {}

    async def footprint(self, cal: Calendar, ref: charts.ChartRef, values: Mapping[str, Any],
                        namespace: str) -> charts.Footprint:
        manifests = await self._render(ref, values, namespace)
        nodes = [charts.NodeInfo(n.name, n.labels, n.taints) for n in cal.nodes.values()]
        try:
            fp = charts.footprint(manifests, nodes, refuse_missing=True)
        except charts.FootprintError as e:
            raise Refused(f"chart {ref}: {e}") from None
        if fp.count == 0:
            raise Refused(f"chart {ref} creates no pods: there is nothing to run")
        return fp

    async def _render(self, ref: charts.ChartRef, values: Mapping[str, Any], namespace: str) -> list[dict]:
        key = json.dumps([ref.chart, ref.repository, ref.version, values, namespace], sort_keys=True, default=str)
        now = time.monotonic()
        hit = self._memo.get(key)
        if hit and now - hit[0] < TTL:
            if isinstance(hit[1], Refused):
                raise hit[1]
            return hit[1]
        try:
            manifests = await charts.render(ref, values, "xp-sizing", namespace, cfg=self.cfg)
            bad = next((f"{where}: {why}" for where, image in charts.images(manifests)
                        if (why := allowlist.image_allowed(image))), None)
            result: list[dict] | Refused = Refused(bad) if bad else manifests
        except charts.HelmError as e:
            result = Refused(f"helm could not render chart {ref}: {e}")
        if len(self._memo) > 256:
            self._memo.clear()
        self._memo[key] = (now, result)
        if isinstance(result, Refused):
            raise result
        return result
