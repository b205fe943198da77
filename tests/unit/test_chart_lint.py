"""The helm chart (helm/execplanner) and the image's recipe (Dockerfile), without a cluster.

`helm lint --strict` and `helm template` with default and non-default values; the rendered
objects are checked (one operator replica, strategy Recreate, non-root pods, probes, RBAC
without Secrets), every EXECPLANNER_* variable the chart sets is a field of the settings
classes (operator/settings.py, planner/settings.py, src/execplanner/cluster/allowlist.py,
src/execplanner/cluster/charts.py), every field is set, and the rendered values load through those
classes; values.schema.json refuses bad values. The helm binary is the pinned one of the local control plane (`make build`).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings

from execplanner import localrun
from execplanner.operator.settings import Settings
from execplanner.cluster.allowlist import AllowlistSettings
from execplanner.cluster.charts import ChartSettings
from execplanner.planner.settings import PlannerSettings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "execplanner"
RELEASE, NAMESPACE = "xp", "xp-system"

NON_DEFAULT = {
    "image": {"repository": "registry.example.org/execplanner", "tag": "1.2.3", "pullPolicy": "Always"},
    "priorityClasses": {"create": False, "task": "site-task"},
    "horizonDays": 14,
    "allowedRegistries": ["docker.io/library", "ghcr.io/my-org"],
    "allowedChartRepositories": ["https://charts.example.org", "oci://ghcr.io/my-org/charts"],
    "allowLocalCharts": True,
    "charts": {"helmTimeoutSeconds": 30.5, "startTimeoutSeconds": 600, "missingRequests": "Refuse",
               "renderTimeoutSeconds": 12.5, "maxChartBytes": 2_000_000, "renderConcurrency": 4, "renderQueue": 0},
    "operator": {"holdLeadSeconds": 45, "offerExpirySeconds": 600, "revokePolicy": "Fail",
                 "waiterImage": "registry.example.org/busybox:1.36", "healthPort": 9090,
                 "notebookImage": "registry.example.org/jupyter/base-notebook:1",
                 "taskTolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
                 "logLevel": "DEBUG", "priorityLevel": "", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
    "planner": {"replicas": 3, "port": 9000, "publicUrl": "https://planner.example.org",
                "identity": {"jwtIssuer": "https://login.example.org", "jwtAudience": "xp",
                             "jwksUrl": "https://login.example.org/jwks", "jwtUserClaim": "email",
                             "tokenSecret": {"name": "planner-tokens", "key": "tokens.csv"},
                             "anonymousAccepts": False},
                "namespaces": {"template": "u-{user}", "map": {"alice": "team-a"}, "create": False},
                "taskPodAnnotations": {"example.org/cost-centre": "astro-42"},
                "offersetWaitSeconds": 2.5, "offersetDefaultCount": 5, "uwsDestructionDays": 3,
                "uwsDefaultDurationSeconds": 7200, "maxWaitSeconds": 60, "maxBodyBytes": 10_000_000, "accessLog": False,
                "rateLimitPerMinute": 30, "renderCacheEntries": 16, "acceptsHeadroom": 1.5, "acceptsDurationHeadroom": 3,
                "service": {"type": "NodePort", "port": 8443}},
}


@pytest.fixture(scope="module")
def helm() -> str:
    path = Path(localrun.cluster().helm)
    if not path.is_file():
        pytest.fail(f"helm is not built ({path}): run `make build` (or `make chart-lint`)", pytrace=False)
    return str(path)


def run(helm: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([helm, *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}", pytrace=False)
    return proc


def render(helm: str, tmp_path: Path, values: dict | None = None, *extra: str) -> list[dict]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, *extra]
    if values is not None:
        (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
        args += ["--values", str(tmp_path / "values.yaml")]
    return [d for d in yaml.safe_load_all(run(helm, *args).stdout) if d]


def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = find(docs, kind, name)
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def container(docs: list[dict], component: str) -> dict:
    dep = one(docs, "Deployment", f"{RELEASE}-execplanner-{component}")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return c


def env_of(c: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c["env"] if "value" in e}


def fields_as_env(cls: type[BaseSettings]) -> set[str]:
    prefix = cls.model_config["env_prefix"]
    return {(prefix + name).upper() for name in cls.model_fields}


def read_in_source(name: str, folder: str) -> bool:
    """The variable is read by name somewhere in folder's Python source (not a settings field)."""
    return any(f'"{name}"' in p.read_text() for p in (ROOT / folder).rglob("*.py"))


def load(cls: type[BaseSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> BaseSettings:
    """cls as the process builds it from the rendered environment (nothing else of ours set)."""
    with monkeypatch.context() as m:
        for key in [k for k in os.environ if k.startswith("EXECPLANNER_")]:
            m.delenv(key)
        for key, value in env.items():
            m.setenv(key, value)
        return cls()


# -- lint and structure ------------------------------------------------------------------------

def test_lint_strict_with_default_and_non_default_values(helm: str, tmp_path: Path):
    run(helm, "lint", "--strict", str(CHART))
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(NON_DEFAULT))
    run(helm, "lint", "--strict", str(CHART), "--values", str(tmp_path / "v.yaml"))


def test_operator_is_one_replica_recreated_with_its_health_probe(helm: str, tmp_path: Path):
    for values, port in ((None, 8081), (NON_DEFAULT, 9090)):
        docs = render(helm, tmp_path, values)
        dep = one(docs, "Deployment", f"{RELEASE}-execplanner-operator")
        assert dep["spec"]["replicas"] == 1
        assert dep["spec"]["strategy"] == {"type": "Recreate"}
        pod = dep["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == f"{RELEASE}-execplanner-operator"
        c = container(docs, "operator")
        assert c["command"] == ["python", "-m", "execplanner.operator"]
        assert env_of(c)["EXECPLANNER_HEALTH_PORT"] == str(port)
        for probe in ("startupProbe", "livenessProbe"):
            # kopf listens on 127.0.0.1 only (operator/__main__.py): the probe runs inside the pod.
            command = " ".join(c[probe]["exec"]["command"])
            assert f"http://127.0.0.1:{port}/healthz" in command, command
    with_off = render(helm, tmp_path, {"operator": {"healthPort": 0}})
    c = container(with_off, "operator")
    assert "livenessProbe" not in c and "startupProbe" not in c and env_of(c)["EXECPLANNER_HEALTH_PORT"] == "0"


def test_planner_deployment_and_service(helm: str, tmp_path: Path):
    for values, replicas, port, service_port in ((None, 2, 8080, 80), (NON_DEFAULT, 3, 9000, 8443)):
        docs = render(helm, tmp_path, values)
        dep = one(docs, "Deployment", f"{RELEASE}-execplanner-planner")
        assert dep["spec"]["replicas"] == replicas
        c = container(docs, "planner")
        assert c["command"] == ["python", "-m", "execplanner.planner"]
        env = env_of(c)
        assert env["EXECPLANNER_PLANNER_HOST"] == "0.0.0.0" and env["EXECPLANNER_PLANNER_PORT"] == str(port)
        assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        svc = one(docs, "Service", f"{RELEASE}-execplanner-planner")
        assert svc["spec"]["ports"][0]["port"] == service_port and svc["spec"]["ports"][0]["targetPort"] == "http"
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= labels.items()
        assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] == f"{RELEASE}-execplanner-planner"


def test_pods_run_as_non_root_without_privileges(helm: str, tmp_path: Path):
    docs = render(helm, tmp_path)
    for component in ("operator", "planner"):
        pod = one(docs, "Deployment", f"{RELEASE}-execplanner-{component}")["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        c = pod["containers"][0]
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert c["volumeMounts"][0] == {"name": "tmp", "mountPath": "/tmp"} and env_of(c)["HOME"] == "/tmp"
        assert c["image"] == "execplanner:0.1.0"


# -- settings --------------------------------------------------------------------------------

@pytest.mark.parametrize("component, classes", [
    ("operator", (Settings, AllowlistSettings, ChartSettings)),
    ("planner", (PlannerSettings, AllowlistSettings, ChartSettings)),
])
def test_env_names_are_the_settings_fields(helm: str, tmp_path: Path, component: str, classes):
    """Each EXECPLANNER_* variable the chart sets is a settings field (or read by name in
    that process's source, like EXECPLANNER_LOG_LEVEL); each field is set by the chart.
    A renamed or added setting fails here until the chart follows."""
    fields = set().union(*(fields_as_env(cls) for cls in classes))
    for values in (None, NON_DEFAULT):
        rendered = {n for n in env_of(container(render(helm, tmp_path, values), component)) if n.startswith("EXECPLANNER_")}
        unknown = {n for n in rendered - fields if not read_in_source(n, component)}
        assert not unknown, f"the chart sets {sorted(unknown)} for the {component}, which nothing reads"
        assert not fields - rendered, f"settings the chart does not set for the {component}: {sorted(fields - rendered)}"


def test_rendered_values_load_through_the_settings_classes(helm: str, tmp_path: Path, monkeypatch):
    docs = render(helm, tmp_path, NON_DEFAULT)
    op_env, pl_env = env_of(container(docs, "operator")), env_of(container(docs, "planner"))
    op = load(Settings, op_env, monkeypatch)
    assert (op.hold_lead_seconds, op.offer_expiry_seconds, op.revoke_policy.value, op.horizon_days, op.health_port) == \
        (45, 600, "Fail", 14, 9090)
    assert (op.waiter_image, op.task_priority_class) == ("registry.example.org/busybox:1.36", "site-task")
    assert op.notebook_image == "registry.example.org/jupyter/base-notebook:1"
    assert op.task_tolerations == NON_DEFAULT["operator"]["taskTolerations"]
    for env in (op_env, pl_env):
        allow = load(AllowlistSettings, env, monkeypatch)
        assert allow.allowed_registries == NON_DEFAULT["allowedRegistries"]
        assert allow.allowed_chart_repositories == NON_DEFAULT["allowedChartRepositories"]
        assert allow.allow_local_charts is True
        charts = load(ChartSettings, env, monkeypatch)
        assert (charts.helm, charts.helm_home, charts.helm_timeout_seconds, charts.helm_start_timeout_seconds,
                charts.chart_missing_requests.value) == ("helm", "/tmp/helm", 30.5, 600, "Refuse")
        assert (charts.render_timeout_seconds, charts.chart_max_bytes, charts.render_concurrency, charts.render_queue) == \
            (12.5, 2_000_000, 4, 0)
    pl = load(PlannerSettings, pl_env, monkeypatch)
    assert (pl.host, pl.port, pl.public_url) == ("0.0.0.0", 9000, "https://planner.example.org")
    assert (pl.jwt_issuer, pl.jwt_audience, pl.jwks_url, pl.jwt_user_claim, pl.anonymous_accepts) == \
        ("https://login.example.org", "xp", "https://login.example.org/jwks", "email", False)
    assert (pl.namespace_template, pl.namespace_map, pl.create_namespaces) == ("u-{user}", {"alice": "team-a"}, False)
    assert pl.pod_annotations == {"example.org/cost-centre": "astro-42"}
    assert (pl.offerset_wait_seconds, pl.offerset_default_count, pl.uws_destruction_days,
            pl.uws_default_duration_seconds, pl.max_wait_seconds, pl.max_body_bytes, pl.horizon_days) == \
        (2.5, 5, 3, 7200, 60, 10_000_000, 14)
    assert (pl.rate_limit_per_minute, pl.render_cache_entries) == (30, 16)
    assert (pl.accepts_headroom, pl.accepts_duration_headroom) == (1.5, 3.0)
    # The static token file is the Secret the user named, mounted read-only.
    c = container(docs, "planner")
    mount = next(m for m in c["volumeMounts"] if m["name"] == "tokens")
    assert mount["readOnly"] is True and pl.token_file == f"{mount['mountPath']}/tokens.csv"
    pod = one(docs, "Deployment", f"{RELEASE}-execplanner-planner")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "tokens")
    assert volume["secret"] == {"secretName": "planner-tokens", "items": [{"key": "tokens.csv", "path": "tokens.csv"}]}
    # The defaults load too, and match the classes' own defaults where the chart keeps them.
    docs = render(helm, tmp_path)
    assert load(Settings, env_of(container(docs, "operator")), monkeypatch) == load(Settings, {}, monkeypatch)
    pl = load(PlannerSettings, env_of(container(docs, "planner")), monkeypatch)
    assert pl.model_copy(update={"host": "127.0.0.1"}) == load(PlannerSettings, {}, monkeypatch)
    for component in ("operator", "planner"):
        defaults = load(ChartSettings, env_of(container(docs, component)), monkeypatch)
        assert defaults.model_copy(update={"helm_home": ""}) == load(ChartSettings, {}, monkeypatch)
        # No chart is fetched from anywhere until the site lists its chart repositories.
        assert load(AllowlistSettings, env_of(container(docs, component)), monkeypatch).allowed_chart_repositories == []
    assert pl.token_file == "" and "tokens" not in {m["name"] for m in container(docs, "planner")["volumeMounts"]}
    assert container(docs, "operator")["image"] == "execplanner:0.1.0"
    assert container(render(helm, tmp_path, NON_DEFAULT), "operator")["image"] == "registry.example.org/execplanner:1.2.3"


# -- RBAC ------------------------------------------------------------------------------------

@pytest.mark.parametrize("component", ["operator", "planner"])
def test_rbac_is_deploys_with_the_release_names(helm: str, tmp_path: Path, component: str):
    """deploy/<component>-rbac.yaml is the one source of truth: the chart renders its roles'
    rules unchanged, with the release's names, bound to the chart's ServiceAccount."""
    source = [d for d in yaml.safe_load_all((ROOT / "deploy" / f"{component}-rbac.yaml").read_text()) if d]
    docs = render(helm, tmp_path)
    sa = f"{RELEASE}-execplanner-{component}"

    def renamed(name: str) -> str:
        return sa + name.removeprefix(f"execplanner-{component}")

    for doc in source:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind in ("Namespace", "ServiceAccount"):
            continue
        out = one(docs, kind, renamed(name))
        if kind in ("ClusterRole", "Role"):
            assert out.get("rules") == doc.get("rules")
            assert out.get("aggregationRule") == doc.get("aggregationRule")
        else:
            ref = doc["roleRef"]
            expect = renamed(ref["name"]) if ref["name"].startswith(f"execplanner-{component}") else ref["name"]
            assert out["roleRef"] == {**ref, "name": expect}
            assert out["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
    assert one(docs, "ServiceAccount", sa)["metadata"]["namespace"] == NAMESPACE
    assert not find(docs, "Namespace")


def test_operator_flow_schema_is_deploys_with_the_release_names(helm: str, tmp_path: Path):
    """deploy/operator-flowschema.yaml puts the operator's requests at a priority level of their
    own: the chart renders the level and the FlowSchema with the release's names, or only the
    FlowSchema at an existing level (operator.priorityLevel), or neither."""
    source = {d["kind"]: d for d in yaml.safe_load_all((ROOT / "deploy" / "operator-flowschema.yaml").read_text())}
    assert source["FlowSchema"]["spec"]["priorityLevelConfiguration"] == {"name": "execplanner-operator"}
    assert source["PriorityLevelConfiguration"]["spec"]["limited"]["lendablePercent"] == 0
    sa = {"name": f"{RELEASE}-execplanner-operator", "namespace": NAMESPACE}
    docs = render(helm, tmp_path)
    out = one(docs, "FlowSchema", sa["name"])
    assert out["spec"] == {**source["FlowSchema"]["spec"], "priorityLevelConfiguration": {"name": sa["name"]},
                           "rules": [{**rule, "subjects": [{"kind": "ServiceAccount", "serviceAccount": sa}]}
                                     for rule in source["FlowSchema"]["spec"]["rules"]]}
    assert one(docs, "PriorityLevelConfiguration", sa["name"])["spec"] == source["PriorityLevelConfiguration"]["spec"]
    other = render(helm, tmp_path, {"operator": {"priorityLevel": "workload-high"}})
    assert one(other, "FlowSchema", sa["name"])["spec"]["priorityLevelConfiguration"] == {"name": "workload-high"}
    assert not find(other, "PriorityLevelConfiguration")
    assert not find(render(helm, tmp_path, NON_DEFAULT), "FlowSchema")
    assert not find(render(helm, tmp_path, NON_DEFAULT), "PriorityLevelConfiguration")


# The most the planner service may ever be granted: read cluster state, read task logs, make a
# user's namespace, and handle plans and runs for users (never their status, never Secrets).
PLANNER_ENVELOPE = {
    ("", "nodes"): {"get", "list", "watch"}, ("", "pods"): {"get", "list", "watch"},
    ("", "resourcequotas"): {"get", "list", "watch"}, ("", "limitranges"): {"get", "list", "watch"},
    ("", "pods/log"): {"get"}, ("", "namespaces"): {"get", "create"},
    ("execplanner.io", "executionplans"): {"get", "list", "watch", "create", "patch", "delete"},
    ("execplanner.io", "taskruns"): {"get", "list", "watch", "create", "patch", "delete"},
}


def test_planner_rbac_stays_within_its_envelope(helm: str, tmp_path: Path):
    docs = render(helm, tmp_path)
    name = f"{RELEASE}-execplanner-planner"
    roles = [r for r in find(docs, "ClusterRole") + find(docs, "Role")
             if r["metadata"]["labels"]["app.kubernetes.io/component"] == "planner"]
    assert [r["metadata"]["name"] for r in roles] == [name]
    for rule in roles[0]["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                allowed = PLANNER_ENVELOPE.get((group, resource), set())
                assert set(rule["verbs"]) <= allowed, f"the planner may {rule['verbs']} {group}/{resource}"
    binding = one(docs, "ClusterRoleBinding", name)
    assert binding["roleRef"]["name"] == name
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}]


def test_no_role_reads_secrets_nor_has_wildcards(helm: str, tmp_path: Path):
    """Of Secrets, only the operator may do one thing: create a notebook session's token
    (never read, list, watch, change or delete one); the planner nothing at all."""
    for values in (None, NON_DEFAULT):
        docs = render(helm, tmp_path, values)
        roles = find(docs, "ClusterRole") + find(docs, "Role")
        assert len(roles) >= 2
        for role in roles:
            for rule in role.get("rules", []):
                if "secrets" in rule.get("resources", []):
                    assert role["metadata"]["labels"]["app.kubernetes.io/component"] == "operator", \
                        role["metadata"]["name"]
                    assert rule["resources"] == ["secrets"] and rule["verbs"] == ["create"], rule
                assert "*" not in rule.get("resources", []) + rule.get("verbs", []) + rule.get("apiGroups", [])


# -- CRDs and PriorityClasses from the repository's files ---------------------------------------

def test_crds_and_priority_classes_are_the_repositorys(helm: str, tmp_path: Path):
    docs = render(helm, tmp_path, None, "--include-crds")
    crds = {d["metadata"]["name"]: d for d in find(docs, "CustomResourceDefinition")}
    source = {d["metadata"]["name"]: d for p in sorted((ROOT / "crds").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d}
    assert crds == source and len(crds) == 2
    pcs = {d["metadata"]["name"]: d for d in find(docs, "PriorityClass")}
    deployed = {d["metadata"]["name"]: d for d in yaml.safe_load_all((ROOT / "deploy" / "priorityclasses.yaml").read_text()) if d}
    assert set(pcs) == set(deployed) == {"execplanner-task"}
    for name, pc in pcs.items():
        for key in ("value", "preemptionPolicy", "globalDefault", "description"):
            assert pc.get(key) == deployed[name].get(key), (name, key)
    # Other names (for a second release, or a cluster that has them already), or none at all.
    renamed = render(helm, tmp_path, {"priorityClasses": {"task": "t2"}})
    assert {d["metadata"]["name"]: d["value"] for d in find(renamed, "PriorityClass")} == \
        {"t2": deployed["execplanner-task"]["value"]}
    assert not find(render(helm, tmp_path, NON_DEFAULT), "PriorityClass")


def test_package_carries_the_linked_files(helm: str, tmp_path: Path):
    """crds/ and files/ are symlinks into the repository: `helm package` must follow them."""
    run(helm, "package", str(CHART), "--destination", str(tmp_path))
    with tarfile.open(tmp_path / "execplanner-0.1.0.tgz") as tar:
        packed = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        assert packed[f"execplanner/crds/{path.name}"] == path.read_bytes()
    for name in ("operator-rbac.yaml", "operator-flowschema.yaml", "planner-rbac.yaml", "priorityclasses.yaml"):
        assert packed[f"execplanner/files/{name}"] == (ROOT / "deploy" / name).read_bytes()
    assert "execplanner/values.schema.json" in packed and "execplanner/templates/NOTES.txt" in packed


# -- the values schema -------------------------------------------------------------------------

@pytest.mark.parametrize("values, where", [
    ({"operator": {"revokePolicy": "Sometimes"}}, "/operator/revokePolicy"),
    ({"operator": {"replicas": 2}}, "/operator"),                      # not a value: always 1
    ({"planner": {"port": "http"}}, "/planner/port"),
    ({"planner": {"replicas": -1}}, "/planner/replicas"),
    ({"planner": {"identity": {"tokenFile": "/x"}}}, "/planner/identity"),
    ({"allowedRegistries": "docker.io"}, "/allowedRegistries"),
    ({"horizonDays": 0}, "/horizonDays"),
    ({"charts": {"missingRequests": "Guess"}}, "/charts/missingRequests"),
    ({"charts": {"renderConcurrency": 0}}, "/charts/renderConcurrency"),
    ({"planner": {"rateLimitPerMinute": -1}}, "/planner/rateLimitPerMinute"),
    ({"planner": {"acceptsHeadroom": 0.5}}, "/planner/acceptsHeadroom"),  # never less than asked for
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"bogus": True}, "bogus"),
])
def test_schema_refuses_bad_values(helm: str, tmp_path: Path, values: dict, where: str):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(values))
    proc = run(helm, "template", RELEASE, str(CHART), "--values", str(tmp_path / "bad.yaml"), check=False)
    assert proc.returncode != 0 and "schema" in proc.stderr and where in proc.stderr, proc.stderr


def test_schema_describes_every_value():
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(node: dict, value, path: str):
        assert node.get("description"), f"{path or '/'} has no description"
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, f"{path} is not strict"
            for key, sub in value.items():
                assert key in node["properties"], f"{path}/{key} is in values.yaml but not in the schema"
                walk(node["properties"][key], sub, f"{path}/{key}")

    walk(schema, defaults, "")


# -- the image's recipe ------------------------------------------------------------------------

def test_dockerfile_pins_its_bases_and_helm_and_runs_as_non_root():
    text = (ROOT / "Dockerfile").read_text()
    versions = dict(line.split("=", 1) for line in (ROOT / "cluster" / "versions.env").read_text().splitlines()
                    if line and not line.startswith("#"))
    assert re.search(rf"^ARG HELM_VERSION={re.escape(versions['HELM_VERSION'])}$", text, re.M)
    for arg in ("PYTHON_IMAGE", "GO_IMAGE"):
        image = re.search(rf"^ARG {arg}=(\S+)$", text, re.M).group(1)
        assert re.search(r":\d+\.\d+\.\d+-slim-bookworm$|:\d+\.\d+\.\d+-bookworm$|@sha256:[0-9a-f]{64}$", image), image
    assert re.findall(r"^USER (\S+)$", text, re.M)[-1] == "10001:10001"
    assert "COPY --from=helm /out/helm /usr/local/bin/helm" in text
    # The build context holds what `pip wheel .` needs (setup.py's package folders).
    ignore = (ROOT / ".dockerignore").read_text().split()
    for needed in ("pyproject.toml", "setup.py", "README.md", "src/", "operator/", "planner/"):
        assert f"!{needed}" in ignore
