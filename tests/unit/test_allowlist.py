"""planner.allowlist: which registries and chart repositories tasks may use."""
from __future__ import annotations

import pytest

from execplanner.cluster.allowlist import (AllowlistSettings, chart_allowed, chart_listed, image_allowed,
                                          image_repository)


@pytest.mark.parametrize("image, repo", [
    ("busybox", "docker.io/library/busybox"),
    ("busybox:1.36", "docker.io/library/busybox"),
    ("library/busybox@sha256:" + "a" * 64, "docker.io/library/busybox"),
    ("me/tool:2", "docker.io/me/tool"),
    ("index.docker.io/me/tool", "docker.io/me/tool"),
    ("docker.io/busybox", "docker.io/library/busybox"),
    ("ghcr.io/org/tool:1.0", "ghcr.io/org/tool"),
    ("localhost:5000/tool:dev", "localhost:5000/tool"),
    ("localhost/tool", "localhost/tool"),
    ("Registry.Example.org:443/a/b/c:tag@sha256:" + "b" * 64, "registry.example.org:443/a/b/c"),
])
def test_image_references_are_read_as_docker_reads_them(image, repo):
    assert image_repository(image) == repo


def test_an_empty_list_allows_every_image():
    assert image_allowed("quay.io/anything/at-all", []) is None


def test_images_are_allowed_by_registry_or_path_prefix_on_whole_segments():
    allowed = ["docker.io/library", "ghcr.io/org", "registry.k8s.io", "https://index.docker.io/trusted/"]
    assert image_allowed("busybox", allowed) is None
    assert image_allowed("registry.k8s.io/pause:3.10", allowed) is None
    assert image_allowed("ghcr.io/org/tool", allowed) is None
    assert image_allowed("trusted/tool", allowed) is None  # index.docker.io is docker.io
    why = image_allowed("ghcr.io/organisation/tool", allowed)
    assert why and "registry ghcr.io" in why and "not allowed" in why
    why = image_allowed("me/tool", allowed)  # Docker Hub, but not under library/ or trusted/
    assert why and "registry docker.io" in why and "docker.io/me/tool" in why
    assert image_allowed("quay.io/x/y", ["docker.io"]) == (
        "image quay.io/x/y (quay.io/x/y) is from registry quay.io, which is not allowed here (allowed: docker.io)")


def test_charts_are_judged_by_repository_url_oci_reference_or_package_url():
    allowed = ["https://charts.example.org/stable", "oci://ghcr.io/org/charts", "http://127.0.0.1"]
    assert chart_allowed("web", "https://charts.example.org/stable", allowed) is None
    assert chart_allowed("web", "https://charts.example.org/stable/", allowed) is None
    assert chart_allowed("https://charts.example.org/stable/web-1.0.0.tgz", None, allowed) is None
    assert chart_allowed("oci://ghcr.io/org/charts/web", None, allowed) is None
    assert chart_allowed("web", "oci://ghcr.io/org/charts", allowed) is None
    assert chart_allowed("web", "http://127.0.0.1:38123", allowed) is None  # no port in the entry: any port
    why = chart_allowed("web", "https://charts.example.org/stable-forks", allowed)
    assert why and "https://charts.example.org" in why and "not an allowed chart repository" in why
    assert chart_allowed("oci://ghcr.io/other/charts/web", None, allowed)
    assert chart_allowed("web", "http://charts.example.org/stable", allowed)  # another scheme
    assert chart_allowed("web", "https://charts.example.org:8443/stable", ["https://charts.example.org:443"])



def test_an_empty_chart_list_fetches_nothing(monkeypatch):
    """Images are pulled by the kubelet; charts are downloaded by execplanner itself, so an
    empty chart allowlist (the default) allows no URL at all, and says so."""
    for chart, repository in (("web", "https://x.example.org/charts"), ("oci://ghcr.io/org/charts/web", None),
                              ("https://x.example.org/web-1.0.0.tgz", None), ("web", "http://127.0.0.1:8879")):
        why = chart_allowed(chart, repository, [], allow_local=False)
        assert why and "no chart repository is allowed here" in why, why
        assert not chart_listed(chart, repository, [])
    assert chart_listed("web", "http://127.0.0.1:8879", ["http://127.0.0.1"])
    assert not chart_listed("/srv/charts/web", None, ["http://127.0.0.1"])  # a path is never "listed"
    monkeypatch.delenv("EXECPLANNER_ALLOWED_CHART_REPOSITORIES", raising=False)
    assert AllowlistSettings().allowed_chart_repositories == [], "the default must stay empty"


def test_local_chart_paths_need_their_own_permission():
    why = chart_allowed("/srv/charts/web", None, [], allow_local=False)
    assert why and "local chart paths are not allowed" in why
    assert chart_allowed("./charts/web", None, ["https://charts.example.org"], allow_local=True) is None
    assert "not a URL" in chart_allowed("web", "charts.example.org", [], allow_local=False)


def test_settings_read_json_lists_from_the_environment(monkeypatch):
    monkeypatch.setenv("EXECPLANNER_ALLOWED_REGISTRIES", '["docker.io/library", "ghcr.io/org"]')
    monkeypatch.setenv("EXECPLANNER_ALLOWED_CHART_REPOSITORIES", '["oci://ghcr.io/org/charts"]')
    s = AllowlistSettings()
    assert s.allowed_registries == ["docker.io/library", "ghcr.io/org"]
    assert s.allowed_chart_repositories == ["oci://ghcr.io/org/charts"]
    assert s.allow_local_charts is False
    monkeypatch.delenv("EXECPLANNER_ALLOWED_REGISTRIES")
    assert AllowlistSettings().allowed_registries == []
