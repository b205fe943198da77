"""Which container registries and chart sources tasks may use: one place, shared by the
operator (which rejects a plan with phase Rejected, reason NotAllowed) and the planner's
HTTP service (which refuses the request).

Settings (environment, JSON lists):

- ``EXECPLANNER_ALLOWED_REGISTRIES``: e.g. ``["docker.io/library", "ghcr.io/my-org",
  "registry.k8s.io"]``; empty (the default): any registry. An entry is a registry host
  (optionally ``host:port``) and optionally a path prefix; it matches on whole path segments,
  so ``ghcr.io/org`` allows ``ghcr.io/org/tool`` but not ``ghcr.io/organisation/tool``. Image
  references are read as Docker does: ``busybox`` is ``docker.io/library/busybox``,
  ``me/tool`` is ``docker.io/me/tool``, and ``index.docker.io`` is ``docker.io``. (Images are
  pulled by the kubelet, never by execplanner.)
- ``EXECPLANNER_ALLOWED_CHART_REPOSITORIES``: e.g. ``["https://charts.example.org",
  "oci://ghcr.io/my-org/charts"]``; empty (the default): **no** chart is fetched from
  anywhere, since execplanner itself downloads charts (the planner to size them, the operator
  to install them) and must not fetch whatever URL a request names. A chart from a repository
  (``repository`` + ``chart`` name) is judged by the repository URL, an OCI chart
  (``oci://...``) and a packaged chart's URL (``https://.../x.tgz``) by the chart reference
  itself. Scheme and host must be equal, the port too when the entry names one, and the
  entry's path must be a prefix on whole segments. (A repository's index names where its
  packages are; an allowed repository is trusted with that.)
- ``EXECPLANNER_ALLOW_LOCAL_CHARTS`` (default false): local chart paths read from the
  operator's own file system are refused unless this is true, whatever the lists say.

The functions are pure when given the lists; without them they read the settings above.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com", "docker.io"}
URL_SCHEMES = ("http://", "https://", "oci://")


class AllowlistSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXECPLANNER_", frozen=True)

    allowed_registries: list[str] = Field(default_factory=list, description="Container registries (and path "
                                          "prefixes) task images may come from (JSON list; empty: any).")
    allowed_chart_repositories: list[str] = Field(default_factory=list, description="Chart repository URLs and "
                                                  "OCI prefixes charts may come from (JSON list; empty: no chart "
                                                  "is fetched from anywhere).")
    allow_local_charts: bool = Field(False, description="Allow chart paths on the operator's own file system.")


@cache
def settings() -> AllowlistSettings:
    return AllowlistSettings()


# -- images --------------------------------------------------------------------------------

def image_repository(image: str) -> str:
    """The fully qualified repository of an image reference, without tag or digest:
    "busybox:1.36" -> "docker.io/library/busybox", "ghcr.io/org/tool@sha256:..." -> "ghcr.io/org/tool"."""
    ref = image.strip()
    ref = ref.split("@", 1)[0]
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, path = first.lower(), rest
    else:
        host, path = DOCKER_HUB, ref
    if host in _HUB_ALIASES:
        host = DOCKER_HUB
    # A tag is the part after the last ':' of the last segment (a port lives in the host).
    last = path.rsplit("/", 1)
    if ":" in last[-1]:
        last[-1] = last[-1].split(":", 1)[0]
        path = "/".join(last)
    if host == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return f"{host}/{path}"


def _registry_entry(entry: str) -> str:
    e = entry.strip().rstrip("/")
    for scheme in ("https://", "http://"):
        if e.lower().startswith(scheme):
            e = e[len(scheme):]
    host, sep, path = e.partition("/")
    host = host.lower()
    if host in _HUB_ALIASES:
        host = DOCKER_HUB
    return f"{host}/{path}" if sep and path else host


def image_allowed(image: str, allowed: Sequence[str] | None = None) -> str | None:
    """None when `image` may be used; otherwise the reason (naming its registry)."""
    allowed = settings().allowed_registries if allowed is None else allowed
    if not allowed:
        return None
    repo = image_repository(image)
    for entry in allowed:
        prefix = _registry_entry(entry)
        if prefix and (repo == prefix or repo.startswith(prefix + "/")):
            return None
    registry = repo.split("/", 1)[0]
    return (f"image {image} ({repo}) is from registry {registry}, which is not allowed here "
            f"(allowed: {', '.join(allowed)})")


# -- charts ------------------------------------------------------------------------------------

def chart_source(chart: str, repository: str | None = None) -> str:
    """What a chart is judged by: the repository URL for a named chart, else the reference."""
    if repository:
        return repository.strip()
    return chart.strip()


def is_url(ref: str) -> bool:
    return ref.lower().startswith(URL_SCHEMES)


def _url_matches(url: str, entry: str) -> bool:
    u, e = urlsplit(url.strip()), urlsplit(entry.strip())
    if u.scheme.lower() != e.scheme.lower() or (u.hostname or "") != (e.hostname or ""):
        return False
    if e.port is not None and u.port != e.port:
        return False
    prefix = e.path.rstrip("/")
    return not prefix or u.path == prefix or u.path.startswith(prefix + "/")


def chart_listed(chart: str, repository: str | None = None, allowed: Sequence[str] | None = None) -> bool:
    """The chart is fetched from a URL that an entry of the (non-empty) allowlist names."""
    allowed = settings().allowed_chart_repositories if allowed is None else allowed
    source = chart_source(chart, repository)
    if (repository and not is_url(repository)) or not is_url(source):
        return False
    return any(is_url(entry) and _url_matches(source, entry) for entry in allowed)


def chart_allowed(chart: str, repository: str | None = None, allowed: Sequence[str] | None = None,
                  allow_local: bool | None = None) -> str | None:
    """None when the chart may be fetched and installed; otherwise the reason (naming its
    source). Judged on the request alone, before any network access."""
    cfg = settings() if allowed is None or allow_local is None else None
    allowed = cfg.allowed_chart_repositories if allowed is None else allowed  # type: ignore[union-attr]
    allow_local = cfg.allow_local_charts if allow_local is None else allow_local  # type: ignore[union-attr]
    source = chart_source(chart, repository)
    if repository and not is_url(repository):
        return f"chart repository {repository!r} is not a URL (http://, https:// or oci://)"
    if not is_url(source):
        if not allow_local:
            return (f"chart {chart!r} is neither a chart in a repository (set repository), an oci:// "
                    "reference nor an http(s) URL of a packaged chart; local chart paths are not allowed here")
        return None
    if chart_listed(chart, repository, allowed):
        return None
    split = urlsplit(source)
    where = f"{split.scheme}://{split.netloc}"
    if not allowed:
        return (f"chart {chart} comes from {source} (host {where}), and no chart repository is allowed here "
                "(EXECPLANNER_ALLOWED_CHART_REPOSITORIES is empty: no chart is fetched)")
    return (f"chart {chart} comes from {source} (host {where}), which is not an allowed chart repository "
            f"(allowed: {', '.join(allowed)})")
