"""The chart's Grafana dashboard (helm/execplanner/dashboards/execplanner.json, a ConfigMap for
Grafana's dashboard sidecar) reads the metrics the planner exports, every one of them; the
optional ServiceMonitor scrapes the planner's /metrics; the web page's values reach the planner's
settings. The helm binary is the local control plane's (`make build`)."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client import generate_latest

from execplanner import localrun
from execplanner.planner.metrics import Metrics
from execplanner.planner.settings import PlannerSettings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "execplanner"


@pytest.fixture(scope="module")
def helm() -> str:
    path = Path(localrun.cluster().helm)
    if not path.is_file():
        pytest.fail(f"helm is not built ({path}): run `make build`", pytrace=False)
    return str(path)


def render(helm: str, tmp_path: Path, values: dict | None = None) -> list[dict]:
    args = [helm, "template", "xp", str(CHART), "--namespace", "xp-system"]
    if values:
        (tmp_path / "v.yaml").write_text(yaml.safe_dump(values))
        args += ["--values", str(tmp_path / "v.yaml")]
    out = subprocess.run(args, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def planner_metric_names() -> set[str]:
    m = Metrics(cache_age=lambda: 0.0, nodes=lambda: 1, bookings=lambda: 1, searches=lambda: (1, 1))
    m.requests.labels("/x", "GET", "200").observe(0.01)
    m.answers.labels("accepts", "YES").inc()
    text = generate_latest(m.registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_dashboard_configmap_for_the_sidecar_reads_every_planner_metric(helm: str, tmp_path: Path):
    docs = render(helm, tmp_path)
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "xp-execplanner-dashboard"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1" and cm["metadata"]["namespace"] == "xp-system"
    dashboard = json.loads(cm["data"]["execplanner.json"])
    assert dashboard["uid"] == "execplanner" and dashboard["panels"]
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"\b(execplanner_[a-z_]+)", e)}
    exported = planner_metric_names()
    assert used <= exported, f"the dashboard reads metrics the planner does not export: {used - exported}"
    families = {re.sub(r"_(bucket|count|sum|total|created)$", "", n) for n in exported}
    shown = {re.sub(r"_(bucket|count|sum|total|created)$", "", n) for n in used}
    assert families <= shown, f"planner metrics the dashboard does not show: {families - shown}"
    assert any("container_cpu_usage_seconds_total" in e and "operator" in e for e in exprs)  # the operator's pod
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_and_service_monitor_follow_their_values(helm: str, tmp_path: Path):
    docs = render(helm, tmp_path, {"grafana": {
        "dashboard": {"enabled": True, "labels": {"grafana_dashboard": None, "dashboards": "execplanner"}, "annotations": {"grafana_folder": "Batch"},
                      "namespace": "monitoring"},
        "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "kps"}}}})
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "xp-execplanner-dashboard"]
    assert cm["metadata"]["namespace"] == "monitoring" and cm["metadata"]["labels"]["dashboards"] == "execplanner"
    assert "grafana_dashboard" not in cm["metadata"]["labels"] and cm["metadata"]["annotations"] == {"grafana_folder": "Batch"}
    (sm,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    (svc,) = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "xp-execplanner-planner"]
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    assert sm["metadata"]["labels"]["release"] == "kps"
    off = render(helm, tmp_path, {"grafana": {"dashboard": {"enabled": False}}})
    assert not [d for d in off if d["kind"] in ("ServiceMonitor",) or d["metadata"]["name"] == "xp-execplanner-dashboard"]


def test_web_values_reach_the_planner(helm: str, tmp_path: Path, monkeypatch):
    docs = render(helm, tmp_path, {"planner": {
        "identity": {"anonymousCalendar": False},
        "web": {"oidc": {"authorizationUrl": "https://login.example.org/auth", "tokenUrl": "https://login.example.org/token",
                         "clientId": "xp-web", "scopes": "openid profile"},
                "grafanaUrl": "https://grafana.example.org/d/execplanner", "groupLabels": ["pool"]}}})
    (dep,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "xp-execplanner-planner"]
    env = {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e}
    with monkeypatch.context() as m:
        for key, value in env.items():
            if key.startswith("EXECPLANNER_PLANNER_"):
                m.setenv(key, value)
        s = PlannerSettings()
    assert (s.web_oidc_authorization_url, s.web_oidc_token_url, s.web_oidc_client_id, s.web_oidc_scopes) == \
        ("https://login.example.org/auth", "https://login.example.org/token", "xp-web", "openid profile")
    assert (s.web_grafana_url, s.web_group_labels, s.anonymous_calendar) == \
        ("https://grafana.example.org/d/execplanner", ["pool"], False)
