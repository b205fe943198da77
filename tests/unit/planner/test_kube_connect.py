"""The API client both processes share: no per-request proxy and netrc look-ups unless a
proxy is configured (aiohttp does them in a worker thread for every request)."""
from __future__ import annotations

import pytest
import yaml

from execplanner.cluster import kube


def test_proxy_variables_are_found_in_either_case():
    assert not kube.proxy_in_environment({})
    assert not kube.proxy_in_environment({"HTTPS_PROXY": "", "NO_PROXY": "example.org"})
    assert kube.proxy_in_environment({"HTTPS_PROXY": "http://proxy:3128"})
    assert kube.proxy_in_environment({"all_proxy": "socks5://proxy:1080"})


@pytest.fixture
def kubeconfig(tmp_path, monkeypatch):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(path))
    for name in kube.PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return path


async def test_a_client_without_proxies_skips_the_environment(kubeconfig):
    api = await kube.connect()
    try:
        assert api.rest_client.pool_manager.trust_env is False
    finally:
        await api.close()


async def test_a_configured_proxy_is_still_honoured(kubeconfig, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    api = await kube.connect()
    try:
        assert api.rest_client.pool_manager.trust_env is True
    finally:
        await api.close()
