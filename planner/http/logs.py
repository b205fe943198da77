"""A task's log (its pod's, through the API server): a UWS result and a session's /log; and a
batch notebook's executed notebook, read from the same log."""
from __future__ import annotations

from typing import Any

from aiohttp import web
from kubernetes_asyncio.client.exceptions import ApiException

from execplanner.api.notebooks import NOTEBOOK_MEDIA_TYPE, executed_notebook
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


async def notebook_result(request: web.Request, plan: dict[str, Any]) -> web.Response:
    """A batch notebook's executed notebook (a UWS job's result, a session's result), read from
    its kept pod's log, once the operator has kept it (status.result): the planner may read pods'
    logs, never ConfigMaps. Only its owner gets here (the callers look the plan up in the
    caller's own namespace)."""
    kept = (plan.get("status") or {}).get("result") or {}
    if not kept.get("configMap"):
        raise Problem(404, "the task has no executed notebook (not a batch notebook, not yet completed, "
                           "or it was not kept: see the plan's message)")
    svc = service(request)
    ns = plan["metadata"]["namespace"]
    run_name = (plan.get("status") or {}).get("taskRun")
    run = svc.cache.runs.get((ns, run_name)) if run_name else None
    where = ((run or {}).get("status") or {}).get("log") or {}
    gone = f"the executed notebook's pod is gone; it is kept in the ConfigMap {kept['configMap']} of your namespace"
    if not where.get("pod"):
        raise Problem(404, gone)
    try:
        text = await svc.kube.pod_log(ns, where["pod"], where.get("container"), 2 << 20)
    except ApiException as e:
        if e.status == 404:
            raise Problem(404, gone) from None
        raise Problem(503, f"the executed notebook cannot be read right now: {api_message(e)}",
                      headers={"Retry-After": "5"}) from None
    notebook = executed_notebook(text)
    if notebook is None:
        raise Problem(404, gone)
    name = str(kept.get("key") or "notebook.ipynb").replace('"', "")
    return web.Response(text=notebook, content_type=NOTEBOOK_MEDIA_TYPE,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
