"""`make demo`: the whole story, on the local control plane.

1. The fake nodes (kwok), Ready with their capacity.
2. execplanner installed by its own helm chart (helm/execplanner). Its pods land on the
   kwok nodes, where nothing really runs, so the operator and the planner then run from this
   checkout with the chart's ServiceAccount tokens and the settings the chart gave them.
3. A scientist's questions over HTTP (IVOA /accepts), through the `execplanner` CLI with a
   bearer token from the development issuer.
4. The examples of examples/ submitted with kubectl: a container plan that runs now, one
   booked for a window a minute ahead (its own pod holds the capacity from shortly before,
   waiting for the start), one
   too big and refused with the reason, and a helm-chart task (examples/charts/skymap,
   served from a chart repository on loopback) planned pod by pod.
5. The calendar, the runs completing, a UWS job run over HTTP with its log.
5c. Several sites: a second local cluster, one question asked of both (execplanner --site).
6. The web page's address, anonymous and with a signed-in link (the development issuer signs
   the demo's user in), and where to look next.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from execplanner import cli, devidentity, localrun
from execplanner.cluster import feed
from execplanner.engine import format_instant

ROOT = Path(__file__).resolve().parents[2]
RELEASE, SYSTEM_NS = "xp-demo", "execplanner-system"
USER, DEMO_NS = "alice", "execplanner-demo"
CHART_REPO_PORT = 8879
GROUP, VERSION, PLURAL = "execplanner.io", "v1alpha1", "executionplans"
EXAMPLES = ("plan-now", "plan-later", "plan-too-big", "plan-helm-local")


def heading(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))


def indented(text: str) -> None:
    print("  " + text.rstrip("\n").replace("\n", "\n  "), flush=True)


class ChartRepo:
    """examples/charts packaged, with an index.yaml, served on 127.0.0.1:8879."""

    def __init__(self, directory: Path) -> None:
        url = f"http://127.0.0.1:{CHART_REPO_PORT}"
        helm = localrun.cluster().helm
        for chart in sorted((ROOT / "examples" / "charts").iterdir()):
            subprocess.run([helm, "package", str(chart), "-d", str(directory)], check=True, capture_output=True)
        subprocess.run([helm, "repo", "index", str(directory), "--url", url], check=True, capture_output=True)

        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass
        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", CHART_REPO_PORT), partial(Quiet, directory=str(directory)))
        except OSError as e:
            raise SystemExit(f"make demo: port {CHART_REPO_PORT} (the example chart repository) is taken: {e}")
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = url

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def example(name: str, now: int) -> dict:
    body = yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())
    starts = body["spec"]["schedule"].get("start")
    if starts:  # a window a minute ahead, whatever day the demo runs
        body["spec"]["schedule"]["start"] = [re.sub(r"^[^/]+", format_instant(now + 60), starts[0])]
    return body


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="execplanner-demo-"))
    kubeconfig = localrun.cluster().kubeconfig
    api = config.new_client_from_config(config_file=kubeconfig)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)

    heading("1. The local control plane's nodes (kwok), as the API server reports them")
    nodes = api.sanitize_for_serialization(core.list_node())["items"]
    rows = [["NAME", "READY", "CPU", "MEMORY", "GPU"]]
    for n in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        alloc = n["status"]["allocatable"]
        rows.append([n["metadata"]["name"], "Ready" if feed.node_ready(n) else "NotReady", alloc["cpu"],
                     alloc["memory"], alloc.get("nvidia.com/gpu", "0")])
    table(rows)

    heading("2. execplanner installed by its chart: helm upgrade --install xp-demo helm/execplanner")
    jwks = devidentity.DevIssuer(devidentity.private_key())  # its JWKS, and the web page's sign-in
    repo = ChartRepo(workdir / "charts")
    values = {
        "priorityClasses": {"create": True, "task": f"{RELEASE}-task"},
        "operator": {"holdLeadSeconds": 20},
        "planner": {"identity": {"jwtIssuer": devidentity.ISSUER, "jwtAudience": devidentity.AUDIENCE,
                                 "jwksUrl": jwks.url},
                    "namespaces": {"map": {USER: DEMO_NS}},
                    "web": {"oidc": {"authorizationUrl": jwks.authorization_url, "tokenUrl": jwks.token_url}},
                    "taskPodAnnotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "5s"}},
        "allowedChartRepositories": [repo.url],
    }
    localrun.install()  # the CRDs as this checkout has them (helm installs crds/ only when they are absent)
    localrun.install_chart(RELEASE, SYSTEM_NS, values, workdir)
    indented(localrun.kubectl("-n", SYSTEM_NS, "get", "deployments,pods", "-l",
                              f"app.kubernetes.io/instance={RELEASE}", "-o", "wide"))
    print("  (kwok nodes run no containers: the two processes run from this checkout instead, with the\n"
          "   chart's ServiceAccount tokens and the settings of its Deployments)")
    op, pl = localrun.from_chart(RELEASE, SYSTEM_NS, workdir)
    op.start()
    pl.start()
    print(f"  operator: running (log {op.log_path})\n  planner:  {pl.url} (log {pl.log_path})")
    token = devidentity.mint(devidentity.private_key(), USER)
    http = ["--url", pl.url, "--token", token]

    try:
        heading(f"3. Questions over HTTP (IVOA /accepts), as {USER}: execplanner ask ...")
        for args in (["--image", "busybox:1.36", "--cores", "2-8", "--memory", "4Gi", "--duration", "30m-2h"],
                     ["--image", "busybox:1.36", "--cores", "64", "--memory", "64Gi", "--duration", "1h"],
                     ["--chart", "skymap", "--repository", repo.url, "--chart-version", "0.1.0",
                      "--duration", "2m"]):
            print(f"\n  $ execplanner ask {' '.join(args)}", flush=True)
            cli.main(["ask", *args, *http])

        heading("4. The examples, submitted with kubectl apply -n execplanner-demo")
        _fresh(core, custom)
        now = int(time.time())
        for name in EXAMPLES:
            custom.create_namespaced_custom_object(GROUP, VERSION, DEMO_NS, PLURAL, example(name, now))
        print(f"  plan-now, plan-later (its window opens {format_instant(now + 60)}), plan-too-big, plan-helm-local")
        _follow(core, custom, until=time.monotonic() + 240, calendar_args=http)

        heading("5. The runs")
        indented(localrun.kubectl("-n", DEMO_NS, "get", "xp,tr"))
        refused = custom.get_namespaced_custom_object(GROUP, VERSION, DEMO_NS, PLURAL, "plan-too-big")["status"]
        print(f"\n  plan-too-big was refused: {refused.get('message')}")
        print("\n  $ execplanner run --image busybox:1.36 --cores 1 --duration 1m -- echo hello   (a UWS job)",
              flush=True)
        cli.main(["run", "--image", "busybox:1.36", "--cores", "1", "--duration", "1m", *http, "--", "echo", "hello"])

        _workshop(custom, http)
        _sites(pl.url, token, jwks.url, workdir)

        heading("6. The web page: the calendar, the question, booking and your bookings (docs/web.md)")
        print(f"  {pl.url}/                    anyone: capacity over time, no names; ask \"can I run this?\"")
        print(f"  {pl.url}/?login_hint={USER}    signed in as {USER} (the development issuer's sign-in, "
              "OIDC code flow with PKCE): the demo's plans named, book and cancel", flush=True)
        if sys.stdin.isatty():
            input("  The page works while the demo runs: open it now, and press Enter to end the demo. ")
    finally:
        pl.stop()
        op.stop()
        repo.close()
        jwks.close()
        # Its pods hold capacity on the fake nodes: leave them free for `make test`. (helm keeps
        # the CRDs, so the demo's plans and runs stay to be looked at.)
        localrun.helm("uninstall", RELEASE, "-n", SYSTEM_NS, "--wait", "--timeout", "60s")
        print(f"\n  helm uninstall {RELEASE}: done (the plans and runs stay; the nodes are free again)")

    heading("Next")
    print(f"  export KUBECONFIG={kubeconfig}")
    print(f"  kubectl -n {DEMO_NS} get xp,tr,jobs,pods        the demo's plans, runs and pods")
    print(f"  kubectl -n {DEMO_NS} describe xp plan-too-big   why it was refused (status and events)")
    print("  make operator & make planner & TOKEN=$(make -s token USER=alice)   then: execplanner --token $TOKEN ...")
    print("  README.md: the operator, the planner's HTTP API (IVOA), the CLI, installing with helm")
    page = f"http://127.0.0.1:{8080 + 100 * localrun.cluster().slot}"
    print("\nDone. Next: read README.md, or run `make test`.")
    print(f"The web page, signed in as {USER} (with `make planner &` running): {page}/?login_hint={USER}")
    return 0


def _workshop(custom: client.CustomObjectsApi, http: list[str]) -> None:
    """The seeds' workshop (examples/plan-workshop.yaml: 30 notebook sessions of 7 cores and 12Gi,
    next Tuesday 15:00-17:00) applied as it is: the default nodes cannot hold it, so it is
    refused with the shortfall. Then as many sessions as the message says fit, booked with the
    CLI through the planner (POST /offersets, all or nothing), shown, and cancelled again."""
    import io
    from datetime import datetime, timedelta, timezone
    heading("5b. The seeds' workshop: 30 notebook sessions of 7 cores, next Tuesday 15:00-17:00 (docs/notebooks.md)")
    today = datetime.now(timezone.utc).date()
    tuesday = today + timedelta(days=(1 - today.weekday()) % 7 or 7)
    window = f"{tuesday}T15:00:00Z/{tuesday}T17:00:00Z"
    body = yaml.safe_load((ROOT / "examples" / "plan-workshop.yaml").read_text())
    body["spec"]["schedule"]["start"] = [window]
    custom.create_namespaced_custom_object(GROUP, VERSION, DEMO_NS, PLURAL, body)
    print(f"  kubectl apply -f examples/plan-workshop.yaml   (its window made {window})", flush=True)
    status: dict = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and status.get("phase") in (None, "Pending"):
        time.sleep(0.5)
        status = custom.get_namespaced_custom_object(GROUP, VERSION, DEMO_NS, PLURAL, "plan-workshop").get("status") or {}
    print(f"  plan-workshop: {status.get('phase', 'Pending')}: {status.get('message', '')}")
    fits = re.search(r"hold at most (\d+)|at most (\d+) fit", status.get("message") or "")
    sessions = int(next(g for g in fits.groups() if g)) if fits else 8
    location = body["spec"]["executable"]["location"]
    args = ["--notebook", location, "--sessions", str(sessions), "--cores", "7", "--memory", "12Gi",
            "--duration", "2h", "--start", window, "--name", "workshop"]
    print(f"\n  A workshop that fits, {sessions} sessions, booked through the planner:"
          f"\n  $ execplanner accept {' '.join(args)}", flush=True)
    buffer = io.StringIO()  # (read for the session's uuid)
    cli.main(["accept", *args, *http], stdout=buffer)
    out = buffer.getvalue()
    print("  " + out.rstrip("\n").replace("\n", "\n  "), flush=True)
    booked = re.search(r"session ([0-9a-f-]{36})", out)
    if booked:  # the endpoints appear at the start (next Tuesday); leave the capacity free
        print(f"  (each session's URL and token Secret are listed from the start: execplanner runs, or "
              f"GET /sessions/{booked.group(1)})\n  $ execplanner cancel {booked.group(1)}", flush=True)
        cli.main(["cancel", booked.group(1), *http])


def _sites(url: str, token: str, jwks_url: str, workdir: Path) -> None:
    """Two sites, one question (docs/federation.md): a second local cluster with 32-core nodes
    and a planner of its own, sharing the development issuer; `execplanner ask --site ...`
    asks both and ranks them. The second cluster is removed again."""
    import os
    heading("5c. Several sites: a second local cluster with 32-core nodes, one question to both (docs/federation.md)")
    site = {"EXECPLANNER_CLUSTER": "demo-site-32", "EXECPLANNER_NODES": "2", "EXECPLANNER_NODE_CPU": "32",
            "EXECPLANNER_GPU_NODES": "0"}
    env = {**os.environ, **site}
    print("  $ EXECPLANNER_CLUSTER=demo-site-32 EXECPLANNER_NODES=2 EXECPLANNER_NODE_CPU=32 make cluster", flush=True)
    subprocess.run([str(ROOT / "cluster" / "down.sh"), "--purge"], env=env, capture_output=True)
    subprocess.run([str(ROOT / "cluster" / "up.sh")], env=env, capture_output=True, check=True)
    directory = workdir / "site-32"
    directory.mkdir()
    saved = {k: os.environ.get(k) for k in site}
    os.environ.update(site)  # localrun's calls go to the second cluster
    try:
        other = localrun.planner(directory, **{
            "EXECPLANNER_PLANNER_JWT_ISSUER": devidentity.ISSUER, "EXECPLANNER_PLANNER_JWT_AUDIENCE":
            devidentity.AUDIENCE, "EXECPLANNER_PLANNER_JWKS_URL": jwks_url}).start(timeout=90)
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    try:
        args = ["--image", "busybox:1.36", "--cores", "20", "--memory", "8Gi", "--duration", "1h"]
        print(f"\n  $ execplanner ask {' '.join(args)} --site local={url} --site site-32={other.url}", flush=True)
        cli.main(["ask", *args, "--token", token, "--site", f"local={url}", "--site", f"site-32={other.url}"])
    finally:
        other.stop()
        subprocess.run([str(ROOT / "cluster" / "down.sh"), "--purge"], env=env, capture_output=True)
        print("\n  (the second cluster is removed again)")


def _fresh(core: client.CoreV1Api, custom: client.CustomObjectsApi) -> None:
    """The demo's namespace, without an earlier demo's plans."""
    try:
        core.create_namespace({"metadata": {"name": DEMO_NS}})
    except ApiException as e:
        if e.status != 409:
            raise
    custom.delete_collection_namespaced_custom_object(GROUP, VERSION, DEMO_NS, PLURAL)
    deadline = time.monotonic() + 60
    while custom.list_namespaced_custom_object(GROUP, VERSION, DEMO_NS, PLURAL)["items"]:
        if time.monotonic() > deadline:
            raise SystemExit("make demo: an earlier demo's plans were not removed within a minute")
        time.sleep(0.5)


def _follow(core: client.CoreV1Api, custom: client.CustomObjectsApi, until: float, calendar_args: list[str]) -> None:
    """Print each change of the plans' phases (and of the task pods waiting for their start)
    until the runs have ended;
    the calendar once the bookings are made."""
    last, shown_calendar = "", False
    while time.monotonic() < until:
        plans = {p["metadata"]["name"]: p for p in custom.list_namespaced_custom_object(
            GROUP, VERSION, DEMO_NS, PLURAL)["items"]}
        phase = {n: (p.get("status") or {}).get("phase", "Pending") for n, p in plans.items()}
        waiting = [p.metadata.name for p in core.list_namespaced_pod(
            DEMO_NS, label_selector="execplanner.io/role=task").items if p.status.phase == "Pending"]
        line = "  ".join(f"{n}={phase[n]}" for n in EXAMPLES if n in phase) + (
            f"  waiting for their start={waiting}" if waiting else "")
        if line != last:
            print(f"  {time.strftime('%H:%M:%S')}  {line}", flush=True)
            last = line
        if not shown_calendar and all(phase.get(n) not in (None, "Pending") for n in EXAMPLES):
            print("\n  $ execplanner calendar --hours 0.1", flush=True)
            cli.main(["calendar", "--hours", "0.1", "--width", "100", *calendar_args])
            print()
            shown_calendar = True
        if all(phase.get(n) in ("Completed", "Failed", "Rejected", "Cancelled", "Expired") for n in EXAMPLES):
            return
        time.sleep(1)
    print("  (the demo stopped waiting; the plans go on: kubectl -n execplanner-demo get xp)")


if __name__ == "__main__":
    sys.exit(main())
