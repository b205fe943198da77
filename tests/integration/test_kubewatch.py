"""The operator's and the planner's list-then-watch (cluster/kubewatch.Informer) against the
real API server: what it reports, and an API server that refuses it."""
from __future__ import annotations

import asyncio
import logging

from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import config as aconfig

from execplanner.cluster.kubewatch import Informer

CM_PATH = "/api/v1/namespaces/{ns}/configmaps"


async def _client(kubeconfig: str, token: str | None = None) -> aclient.ApiClient:
    conf = aclient.Configuration()
    await aconfig.load_kube_config(config_file=kubeconfig, client_configuration=conf)
    if token is not None:  # the same server and CA, someone the API server does not know
        conf.cert_file = conf.key_file = None
        conf.api_key = {"BearerToken": f"Bearer {token}"}
    return aclient.ApiClient(conf)


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _cm(name: str, value: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}}


def test_lists_then_watches_and_reports_each_change(kubeconfig, core, namespace):
    core.create_namespaced_config_map(namespace, _cm("before", "1"))

    async def run() -> list[tuple[str, str, str | None]]:
        seen: list[tuple[str, str, str | None]] = []
        api = await _client(kubeconfig)
        informer = Informer(api, CM_PATH.format(ns=namespace),
                            lambda t, o: seen.append((t, o["metadata"]["name"], (o.get("data") or {}).get("v"))))
        task = asyncio.create_task(informer.run())
        try:
            await asyncio.wait_for(informer.synced.wait(), 10)
            core.create_namespaced_config_map(namespace, _cm("after", "1"))
            core.patch_namespaced_config_map("after", namespace, {"data": {"v": "2"}})
            core.delete_namespaced_config_map("before", namespace)
            await _until(lambda: ("DELETED", "before", "1") in seen)
            assert informer.errors == 0
        finally:
            task.cancel()
            await api.close()
        return seen

    seen = asyncio.run(run())
    ours = [s for s in seen if s[1] in ("before", "after")]
    assert ours == [("ADDED", "before", "1"), ("ADDED", "after", "1"), ("MODIFIED", "after", "2"),
                    ("DELETED", "before", "1")], ours


def test_an_api_server_that_refuses_the_watch_is_reported_with_its_status(kubeconfig, namespace, caplog):
    """A client the API server does not know gets 401: the informer says so (status, path),
    counts it as an error and tries again later, instead of failing on a missing field."""
    async def run() -> Informer:
        api = await _client(kubeconfig, token="not-a-token")
        informer = Informer(api, CM_PATH.format(ns=namespace), lambda t, o: None)
        task = asyncio.create_task(informer.run())
        try:
            await _until(lambda: informer.errors >= 1)
        finally:
            task.cancel()
            await api.close()
        return informer

    with caplog.at_level(logging.WARNING, logger="execplanner.planner.watch"):
        informer = asyncio.run(run())
    assert not informer.synced.is_set()
    message = "\n".join(r.getMessage() for r in caplog.records)
    assert "(401)" in message and CM_PATH.format(ns=namespace) in message, message
    assert "KeyError" not in message, message
