"""Runs the execplanner operator as a real process, with its own restricted credentials.

The operator is started as `python -m execplanner.operator` (execplanner.localrun) with a
kubeconfig that carries a token of the ServiceAccount in deploy/operator-rbac.yaml (never
the admin's certificate), so the integration tests also prove that the RBAC it ships is
enough. Its logs go to a file; `Operator.tail()` gives the end of it for assertion
messages.

conftest.py registers the fixtures once for the session. If the operator cannot start, every test that uses it fails (it is never skipped).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from execplanner import localrun

from . import cluster_env

SYSTEM_NAMESPACE, SERVICE_ACCOUNT = localrun.OPERATOR_SA
SA_USER = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{SERVICE_ACCOUNT}"

# The shared instance's settings (see the brief in test_operator.py).
HOLD_LEAD_SECONDS = 15  # > the operator-down test's 10 s, so its task pod exists before the stop
OFFER_EXPIRY_SECONDS = 8
REVOKE_POLICY = "Replan"
# Allowlists as a site would set them: the images the tests use (and the notebook tasks'
# default server image), charts from loopback only (test_helm_tasks.py serves its chart
# repository on 127.0.0.1).
ALLOWED_REGISTRIES = ["docker.io", "registry.k8s.io", "quay.io/jupyter"]
ALLOWED_CHART_REPOSITORIES = ["http://127.0.0.1"]


class OperatorProcess(localrun.Operator):
    """localrun.Operator, failing the test (never skipping it) when it cannot start."""

    def start(self, timeout: float = 30) -> OperatorProcess:
        try:
            return super().start(timeout)
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)

    def ensure_running(self) -> None:
        if not self.alive():
            self.start()


@pytest.fixture(scope="session")
def operator_kubeconfig(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Installs CRDs, priority classes and the operator's RBAC (as admin), and returns a
    kubeconfig that authenticates as the operator's ServiceAccount with a fresh token."""
    try:
        localrun.install()
        path = localrun.service_account_kubeconfig(tmp_path_factory.mktemp("operator-creds"), *localrun.OPERATOR_SA)
    except subprocess.CalledProcessError as e:
        pytest.fail(f"installing the operator's prerequisites failed: {e.cmd}\n{e.stdout}{e.stderr}", pytrace=False)
    # The restricted identity works at all (else every test would fail for a confusing reason).
    check = subprocess.run([cluster_env.binary("kubectl"), "--kubeconfig", str(path), "auth", "can-i",
                            "watch", "executionplans.execplanner.io", "-A"], capture_output=True, text=True)
    if check.stdout.strip() != "yes":
        pytest.fail(f"the operator's kubeconfig {path} cannot watch executionplans: "
                    f"{check.stdout}{check.stderr}", pytrace=False)
    return str(path)


@pytest.fixture(scope="session")
def operator(operator_kubeconfig: str, tmp_path_factory: pytest.TempPathFactory):
    """The shared operator: hold lead 15 s, offers expire after 8 s, revoke policy Replan, the
    cluster's helm, allowlists (ALLOWED_REGISTRIES, ALLOWED_CHART_REPOSITORIES). One per
    session: conftest.py registers it (imported into several test modules, pytest would make
    one per module, and two operators would both act on every plan)."""
    workdir = tmp_path_factory.mktemp("operator")
    handle = OperatorProcess(Path(operator_kubeconfig), workdir / "operator.log", {
        "EXECPLANNER_HOLD_LEAD_SECONDS": str(HOLD_LEAD_SECONDS),
        "EXECPLANNER_OFFER_EXPIRY_SECONDS": str(OFFER_EXPIRY_SECONDS),
        "EXECPLANNER_REVOKE_POLICY": REVOKE_POLICY,
        "EXECPLANNER_HELM": cluster_env.binary("helm"),
        "EXECPLANNER_HELM_HOME": str(workdir / "helm"),
        "EXECPLANNER_ALLOWED_REGISTRIES": json.dumps(ALLOWED_REGISTRIES),
        "EXECPLANNER_ALLOWED_CHART_REPOSITORIES": json.dumps(ALLOWED_CHART_REPOSITORIES),
    })
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def operator_log(operator: OperatorProcess, request: pytest.FixtureRequest):
    """Makes sure the operator runs for the test; if the test fails, prints the operator's
    log lines written during the test (pytest shows them in the failure's captured output)."""
    operator.ensure_running()
    since = operator.log_size()
    failed_before = request.session.testsfailed
    yield since
    if request.session.testsfailed > failed_before:
        text = operator.tail(200, since=since)
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("")
            reporter.write_line(f"==== operator log during {request.node.nodeid} ====")
            for line in text.splitlines():
                reporter.write_line(line)
