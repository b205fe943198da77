"""A task's log (its pod's, through the API server): a UWS result and a session's /log."""
from __future__ import annotations

from typing import Any

from aiohttp import web
from kubernetes_asyncio.client.exceptions import ApiException

from execplanner.cluster.kube import api_message
from .common import Problem, service


async def task_log(request: web.Request, plan: dict[str, Any]) -> web.Response:
    svc = service(request)
    ns = plan["metadata"]["namespace"]
    run_name = (plan.get("status") or {}).get("taskRun")
    run = svc.cache.runs.get((ns, run_name)) if run_name else None
    where = ((run or {}).get("status") or {}).get("log") or {}
    if not where.get("pod"):
        raise Problem(404, "the task has no log yet (it has not started)")
    try:
        text = await svc.kube.pod_log(ns, where["pod"], where.get("container"))
    except ApiException as e:
        if e.status == 404:
            raise Problem(404, f"the task's pod {where['pod']} and its log are gone") from None
        raise Problem(503, f"the task's log cannot be read right now: {api_message(e)}",
                      headers={"Retry-After": "5"}) from None
    return web.Response(text=text, content_type="text/plain")
