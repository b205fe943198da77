"""The API server's refusals, passed on as what they mean to the caller."""
from __future__ import annotations

from kubernetes_asyncio.client.exceptions import ApiException

from execplanner.cluster.kube import api_message
from .common import Problem


def api_problem(e: ApiException, what: str) -> Problem:
    message = api_message(e)
    if e.status in (400, 422):  # the CRD's validation: its message names the field
        return Problem(400, f"{what} was refused: {message}")
    if e.status == 403 and "quota" in message.lower():
        return Problem(403, f"{what} was refused: {message}")
    if e.status == 404:
        return Problem(404, f"{what} does not exist")
    if e.status == 409:
        return Problem(409, f"{what} changed meanwhile; try again ({message})")
    # The planner's own credentials or the API server failed: not the caller's fault.
    return Problem(503, f"the cluster could not take {what} right now ({e.status}: {message})",
                   headers={"Retry-After": "5"})
