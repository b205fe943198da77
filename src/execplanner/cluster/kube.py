"""The planner's writes and direct reads: ExecutionPlans (create, patch the spec, delete), the
user's namespace, and a task's log. Nothing else is ever written by the planner."""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.client.rest import RESTResponse

from execplanner.api.labels import GROUP, VERSION

PLANS = "executionplans"


PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy", "ws_proxy", "wss_proxy")


async def connect() -> client.ApiClient:
    """A client with in-cluster credentials, else $KUBECONFIG / ~/.kube/config (the planner's
    and the operator's)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
    else:
        await config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    api = client.ApiClient()
    if not proxy_in_environment(os.environ):
        # kubernetes_asyncio's session trusts the environment, so aiohttp looks up proxy
        # variables and ~/.netrc in a worker thread for every request: an eighth of the
        # operator's CPU under bench-operator's load (py-spy). With no proxy variable set
        # there is nothing to find; a kubeconfig's proxy-url is applied separately.
        api.rest_client.pool_manager._trust_env = False
    return api


async def checked(resp: Any) -> Any:
    """`resp`, asked for with _preload_content=False (which the client returns whatever its
    status), if its status is 2xx; else its body is read and raised as the ApiException every
    other call raises (else a refused pod would pass for a made one, a 403 for a listing)."""
    if 200 <= resp.status <= 299:
        return resp
    try:
        data = await resp.read()
    finally:
        resp.release()
    raise ApiException(http_resp=RESTResponse(resp, data))


def proxy_in_environment(environ: Mapping[str, str]) -> bool:
    return any(environ.get(name) or environ.get(name.upper()) for name in PROXY_VARIABLES)


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self._namespaces: set[str] = set()

    async def ensure_namespace(self, name: str, user: str) -> None:
        """Create the user's namespace on first use (once known, never asked again)."""
        if name in self._namespaces:
            return
        try:
            await self.core.read_namespace(name)
        except ApiException as e:
            if e.status != 404:
                raise
            body = {"metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "execplanner"},
                                 "annotations": {"execplanner.io/owner": user}}}
            try:
                await self.core.create_namespace(body)
            except ApiException as e2:
                if e2.status != 409:
                    raise
        self._namespaces.add(name)

    async def create_plan(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLANS, body)

    async def get_plan(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLANS, name)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    async def patch_spec(self, namespace: str, name: str, spec: dict[str, Any],
                         resource_version: str | None = None) -> dict[str, Any] | None:
        """Merge-patch the spec; with resource_version, only if nobody changed the plan since
        (409 otherwise), for read-modify-write of lists."""
        body: dict[str, Any] = {"spec": spec}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            return await self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLANS, name, body, _content_type="application/merge-patch+json")
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    async def delete_plan(self, namespace: str, name: str) -> bool:
        try:
            await self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLANS, name)
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    async def pod_log(self, namespace: str, pod: str, container: str | None, limit_bytes: int = 1 << 20) -> str:
        return await self.core.read_namespaced_pod_log(pod, namespace, container=container, limit_bytes=limit_bytes)


def api_message(e: ApiException) -> str:
    """The API server's own message (its Status body), e.g. a CRD validation error."""
    try:
        return json.loads(e.body).get("message") or str(e.reason)
    except (TypeError, ValueError):
        return str(e.reason)
