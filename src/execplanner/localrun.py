"""Running execplanner's processes against the local control plane (cluster/), the way they
run in a real cluster: CRDs and manifests applied by the admin, the operator with its own
ServiceAccount's token (so its RBAC is exercised), never as cluster admin.

Used by `make operator`, the demo, the benchmarks and the integration tests.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_SA = ("execplanner-system", "execplanner-operator")
PLANNER_SA = ("execplanner-system", "execplanner-planner")


@dataclass(frozen=True)
class Cluster:
    kubeconfig: str
    kubectl: str
    helm: str
    server: str
    ca: str
    nodes: dict[str, str]  # the fake nodes' shape: nodes, node_cpu, node_memory, node_pods, gpu_nodes, gpu_per_node
    name: str = "cluster"  # EXECPLANNER_CLUSTER
    slot: int = 0          # its ports' offset / 100


def cluster(name: str | None = None) -> Cluster:
    """Where a local control plane's files are: the one EXECPLANNER_CLUSTER names (docs/
    local-cluster.md), read when asked, so a test can work with several."""
    return _cluster(name or os.environ.get("EXECPLANNER_CLUSTER") or "cluster")


@cache
def _cluster(name: str) -> Cluster:
    """Asked of cluster/env.sh, so the two never disagree."""
    script = (f'. "{ROOT}/cluster/env.sh"; echo "$kubeconfig"; echo "$k8s_bin/kubectl"; echo "$helm_bin/helm"; '
              'echo "https://127.0.0.1:$APISERVER_PORT"; echo "$pki/ca.crt"; '
              'echo "$NODES $NODE_CPU $NODE_MEMORY $NODE_PODS $GPU_NODES $GPU_PER_NODE"; echo "$slot"')
    env = {**os.environ, "EXECPLANNER_CLUSTER": name}
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, env=env).stdout.split("\n")
    shape = dict(zip(("nodes", "node_cpu", "node_memory", "node_pods", "gpu_nodes", "gpu_per_node"), out[5].split()))
    return Cluster(*out[:5], nodes=shape, name=name, slot=int(out[6]))


def kubectl(*args: str, input: str | None = None) -> str:
    c = cluster()
    return subprocess.run([c.kubectl, "--kubeconfig", c.kubeconfig, *args], input=input, capture_output=True,
                          text=True, check=True).stdout


def install() -> None:
    """CRDs, PriorityClasses and the operator's RBAC (idempotent)."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s",
            "crd/executionplans.execplanner.io", "crd/taskruns.execplanner.io")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "deploy"))


def service_account_kubeconfig(directory: Path, namespace: str, name: str, hours: int = 12) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount namespace/name (a fresh token)."""
    c = cluster()
    token = kubectl("-n", namespace, "create", "token", name, f"--duration={hours}h").strip()
    path = directory / f"{name}.kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: local, cluster: {{server: '{c.server}', certificate-authority: '{c.ca}'}}}}]\n"
        f"users: [{{name: {name}, user: {{token: '{token}'}}}}]\n"
        f"contexts: [{{name: local, context: {{cluster: local, user: {name}}}}}]\ncurrent-context: local\n")
    path.chmod(0o600)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Operator:
    """The operator (or, as Planner, the planner service) as a child process in its own
    session, with its own credentials and log.

    Each start takes a free port for its health endpoint (unless the environment names one)
    and waits until it answers; RuntimeError, with the log's tail, if it does not."""
    kubeconfig: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    health_port: int | None = None
    module = "execplanner.operator"
    port_env = "EXECPLANNER_HEALTH_PORT"
    health_path = "/healthz"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        if not self.alive():
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}{self.health_path}", timeout=2) as r:
                return r.status == 200
        except (OSError, ValueError):
            return False

    def start(self, timeout: float = 60) -> Operator:
        if self.alive():
            raise RuntimeError(f"{self.module} already runs (pid {self.pid})")
        self.health_port = int(self.env.get(self.port_env) or free_port())
        env = {**os.environ, **self.env, "KUBECONFIG": str(self.kubeconfig),
               self.port_env: str(self.health_port), "PYTHONUNBUFFERED": "1"}
        self.note(f"starting {self.module} (port {self.health_port})")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", self.module], env=env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.log_path.parent, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited with {self.proc.returncode} before it was healthy "
                                   f"(log {self.log_path}):\n{self.tail(80)}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.module} was not healthy within {timeout:.0f}s "
                                   f"(log {self.log_path}):\n{self.tail(80)}")
            time.sleep(0.2)
        return self

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)  # its own session: the group is only what it started
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash."""
        if self.alive():
            self._signal(signal.SIGKILL)
            self.proc.wait(10)
            self.note(f"killed (SIGKILL), exit code {self.proc.returncode}")

    def stop(self, timeout: float = 15) -> None:
        if self.alive():
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(10)
            self.note(f"stopped, exit code {self.proc.returncode}")

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return kb / 1024

    def note(self, text: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"===== {text} at {time.strftime('%H:%M:%S')} =====\n")

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def tail(self, lines: int = 40, since: int = 0) -> str:
        """The last `lines` lines of the log, from byte offset `since` on."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            return f"(no log at {self.log_path})"
        out = text.splitlines()[-lines:]
        return f"--- {self.module} log ({self.log_path}), last {len(out)} lines ---\n" + "\n".join(out)


# `make operator` and `make planner` fetch charts from loopback (the demo's chart repository
# on 127.0.0.1:8879, examples/plan-helm-local.yaml) unless the environment names other
# repositories: the setting's default, an empty list, fetches no chart at all.
LOCAL_CHART_REPOSITORIES = '["http://127.0.0.1"]'


def _local_charts() -> dict[str, str]:
    name = "EXECPLANNER_ALLOWED_CHART_REPOSITORIES"
    return {} if name in os.environ else {name: LOCAL_CHART_REPOSITORIES}


def operator(directory: Path, **env: str) -> Operator:
    """Install what the operator needs and return it, ready to start with its own identity."""
    install()
    kubeconfig = service_account_kubeconfig(directory, *OPERATOR_SA)
    env = {"EXECPLANNER_HELM": cluster().helm, **env}  # the cluster's own helm, for chart tasks
    return Operator(kubeconfig, directory / "operator.log", {k: str(v) for k, v in env.items()})


class Planner(Operator):
    """The planner service as a child process; healthy once /readyz says its watches listed."""
    module = "execplanner.planner"
    port_env = "EXECPLANNER_PLANNER_PORT"
    health_path = "/readyz"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}"


def planner(directory: Path, **env: str) -> Planner:
    """Install what the planner needs and return it, ready to start with its own identity."""
    install()
    kubeconfig = service_account_kubeconfig(directory, *PLANNER_SA)
    env = {"EXECPLANNER_HELM": cluster().helm, **env}  # the cluster's own helm, to size charts
    return Planner(kubeconfig, directory / "planner.log", {k: str(v) for k, v in env.items()})


class JwksServer:
    """The development issuer's JWKS on loopback (a thread), as an OIDC issuer would serve it."""

    def __init__(self, document: dict, port: int = 0) -> None:
        import http.server
        import json
        import threading
        body = json.dumps(document).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                found = self.path.split("?")[0] == "/jwks.json"
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                if found:
                    self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="jwks").start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def helm(*args: str) -> str:
    c = cluster()
    return subprocess.run([c.helm, "--kubeconfig", c.kubeconfig, *args], capture_output=True, text=True,
                          check=True).stdout


def install_chart(release: str, namespace: str, values: dict, directory: Path) -> None:
    """`helm upgrade --install` helm/execplanner as `release` (its pods land on kwok nodes,
    where nothing really runs: the processes run from the checkout, see from_chart)."""
    import yaml
    path = directory / f"{release}-values.yaml"
    path.write_text(yaml.safe_dump(values))
    helm("upgrade", "--install", release, str(ROOT / "helm" / "execplanner"), "-n", namespace, "--create-namespace",
         "--values", str(path), "--wait", "--timeout", "120s")


def _deployment(release: str, namespace: str, component: str) -> tuple[str, dict[str, str]]:
    """The ServiceAccount and the environment the chart gave a component's Deployment."""
    import json
    found = json.loads(kubectl("-n", namespace, "get", "deployments", "-o", "json", "-l",
                               f"app.kubernetes.io/instance={release},app.kubernetes.io/component={component}"))
    if len(found["items"]) != 1:
        raise RuntimeError(f"release {release} in {namespace} has {len(found['items'])} {component} Deployments")
    pod = found["items"][0]["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0].get("env") or [] if "value" in e}
    return pod["serviceAccountName"], env


def from_chart(release: str, namespace: str, directory: Path, **overrides: str) -> tuple[Operator, Planner]:
    """The operator and the planner as the chart deploys them (their ServiceAccounts' tokens,
    their Deployments' settings), run from this checkout; `overrides` for what differs here
    (ports, files the pods would mount, the cluster's own helm)."""
    common = {"EXECPLANNER_HELM": cluster().helm, "EXECPLANNER_HELM_HOME": str(directory / "helm")}
    processes = []
    for cls, component, port_env in ((Operator, "operator", "EXECPLANNER_HEALTH_PORT"),
                                     (Planner, "planner", "EXECPLANNER_PLANNER_PORT")):
        sa, env = _deployment(release, namespace, component)
        env = {k: v for k, v in env.items() if k.startswith("EXECPLANNER_")}
        env.pop(port_env, None)  # a free port here
        env.update(common, EXECPLANNER_PLANNER_HOST="127.0.0.1", **overrides)
        processes.append(cls(service_account_kubeconfig(directory, namespace, sa), directory / f"{component}.log",
                             env))
    return processes[0], processes[1]  # type: ignore[return-value]


def dev_issuer():
    """The development issuer on its port (its JWKS, and the sign-in of the web page: OIDC's
    authorization code flow with PKCE, devidentity.DevIssuer); None when a running one serves the
    same keys there already (a second `make planner`, for another local cluster, shares it, as
    the sites of a federation share one sign-on)."""
    import json

    from execplanner import devidentity
    key = devidentity.private_key()
    document = devidentity.jwks(key)
    try:
        return devidentity.DevIssuer(key, port=devidentity.JWKS_PORT)
    except OSError:
        url = f"http://127.0.0.1:{devidentity.JWKS_PORT}/jwks.json"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if json.load(r) == document:
                    return None
        except (OSError, ValueError):
            pass
        raise RuntimeError(f"port {devidentity.JWKS_PORT} is taken by something other than the development issuer "
                           "(EXECPLANNER_DEV_JWKS_PORT picks another)") from None


def planner_main() -> None:
    """`make planner`: the planner in the foreground on PLANNER_PORT (8080), with its own
    credentials, accepting the development issuer's tokens (`make token USER=name`)."""
    import tempfile

    from execplanner import devidentity
    jwks = dev_issuer()
    # 8080 for the default cluster; another local cluster's planner beside it on 8080 + 100 x slot
    port = os.environ.get("PLANNER_PORT") or str(8080 + 100 * cluster().slot)
    env = {**devidentity.planner_env(devidentity.JWKS_PORT), **devidentity.web_env(devidentity.JWKS_PORT),
           "EXECPLANNER_PLANNER_PORT": port, **_local_charts()}
    pl = planner(Path(tempfile.mkdtemp(prefix="execplanner-planner-")), **env)
    print(f"planner: http://127.0.0.1:{port} as {PLANNER_SA[0]}/{PLANNER_SA[1]}; tokens: make token USER=<name>; "
          f"the web page: http://127.0.0.1:{port}/ (signed in: http://127.0.0.1:{port}/?login_hint=<name>); "
          "Ctrl-C stops it", file=sys.stderr)
    proc = subprocess.Popen([sys.executable, "-m", "execplanner.planner"],
                            env={**os.environ, **pl.env, "KUBECONFIG": str(pl.kubeconfig)})
    try:
        sys.exit(proc.wait())
    except KeyboardInterrupt:
        proc.terminate()
        sys.exit(proc.wait())
    finally:
        if jwks is not None:
            jwks.close()


def main() -> None:
    """`make operator`: the operator in the foreground, with its own credentials."""
    if sys.argv[1:] == ["planner"]:
        planner_main()
        return
    import tempfile
    op = operator(Path(tempfile.mkdtemp(prefix="execplanner-operator-")), **_local_charts())
    print(f"operator: running as {OPERATOR_SA[0]}/{OPERATOR_SA[1]} (KUBECONFIG={op.kubeconfig}); Ctrl-C stops it",
          file=sys.stderr)
    os.execve(sys.executable, [sys.executable, "-m", "execplanner.operator"],
              {**os.environ, **op.env, "KUBECONFIG": str(op.kubeconfig)})


if __name__ == "__main__":
    main()
