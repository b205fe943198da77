"""Fixtures for the web page's tests in a real browser: headless Chromium from Debian's
`chromium` package (tests/browser/install-chromium.sh installs it with apt-get when it is
missing), driven by Playwright's Python package through its executable path. Playwright never
downloads a browser here (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1; no `playwright install`).

The planner and the operator run as the integration tests run them (tests/integration: the
local control plane, their own ServiceAccounts, nothing mocked), with the development issuer
(execplanner.devidentity.DevIssuer) signing people in through the authorization code flow
with PKCE. Offers are held for two minutes here (the integration tests' operator holds them for
8 s), a person's pace. Run this folder in its own pytest session (make test does): with the
integration tests in the same session, two operators would act on every plan.

Every test saves a screenshot to test-artifacts/browser/<test>.png, passed or failed.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from pathlib import Path

import pytest

from execplanner import devidentity, localrun

from ..integration.conftest import api, core, kubeconfig, kubectl  # noqa: F401 (fixtures, registered here)
from ..integration.operator_fixture import (ALLOWED_CHART_REPOSITORIES, ALLOWED_REGISTRIES, OperatorProcess,
                                            operator_kubeconfig)  # noqa: F401
from ..integration.planner_fixture import RATE_LIMIT_PER_MINUTE, RUN_SECONDS

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")  # never a browser of Playwright's own

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
ISSUER, AUDIENCE = "https://issuer.web-tests.execplanner.io", "execplanner-web-tests"
NAMESPACE_TEMPLATE = "t-web-{user}"
OFFER_EXPIRY_SECONDS = 120
HOLD_LEAD_SECONDS = 15
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions", "--mute-audio"]


def pytest_collection_modifyitems(config, items):
    here = str(HERE)
    if any(str(item.path).startswith(here) for item in items) and \
            any("/tests/integration/" in str(item.path) for item in items):
        raise pytest.UsageError("run tests/browser in a pytest session of its own (`make test` does): with "
                                "tests/integration in the same session two operators would act on every plan")


# -- the browser ----------------------------------------------------------------------------------------

def chromium_path() -> str:
    """Debian's chromium, installed by install-chromium.sh when missing (apt-get); its path."""
    proc = subprocess.run(["bash", str(HERE / "install-chromium.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"no Chromium for the browser tests (tests/browser/install-chromium.sh):\n{proc.stderr[-3000:]}",
                    pytrace=False)
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright's Python package is missing: `make venv` installs the test extras", pytrace=False)
    path = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name).strip('-')}.png"


@pytest.fixture
def page(browser, request):
    """A fresh browser context (its own storage) on a laptop-sized screen, in a time zone other
    than UTC; a screenshot of the page when the test ends, whatever its outcome."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, timezone_id="Europe/Berlin",
                                  locale="en-GB")
    context.set_default_timeout(20_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Content Security Policy" in m.text
          else None)
    pg.errors = errors  # type: ignore[attr-defined]
    yield pg
    try:
        pg.screenshot(path=str(artifact(request.node.name)), full_page=True)
    finally:
        context.close()
    assert not errors, f"the page reported errors: {errors}"


# -- the planner with the development issuer, and the operator -------------------------------------------

@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory):
    key = devidentity.private_key(tmp_path_factory.mktemp("web-issuer"))
    server = devidentity.DevIssuer(key, issuer=ISSUER, audience=AUDIENCE)
    yield server
    server.close()


@pytest.fixture(scope="session")
def web_operator(operator_kubeconfig: str, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    """The operator as the integration tests run it (OperatorProcess, its own ServiceAccount), with
    offers held for two minutes."""
    workdir = tmp_path_factory.mktemp("web-operator")
    handle = OperatorProcess(Path(operator_kubeconfig), workdir / "operator.log", {
        "EXECPLANNER_HOLD_LEAD_SECONDS": str(HOLD_LEAD_SECONDS),
        "EXECPLANNER_OFFER_EXPIRY_SECONDS": str(OFFER_EXPIRY_SECONDS),
        "EXECPLANNER_HELM": localrun.cluster().helm,
        "EXECPLANNER_HELM_HOME": str(workdir / "helm"),
        "EXECPLANNER_ALLOWED_REGISTRIES": json.dumps(ALLOWED_REGISTRIES),
        "EXECPLANNER_ALLOWED_CHART_REPOSITORIES": json.dumps(ALLOWED_CHART_REPOSITORIES),
    })
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def web_planner(kubeconfig: str, web_operator, issuer, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    directory: Path = tmp_path_factory.mktemp("web-planner")
    env = {
        "EXECPLANNER_PLANNER_JWT_ISSUER": ISSUER,
        "EXECPLANNER_PLANNER_JWT_AUDIENCE": AUDIENCE,
        "EXECPLANNER_PLANNER_JWKS_URL": issuer.url,
        **issuer.web_env(),
        "EXECPLANNER_PLANNER_WEB_GRAFANA_URL": "http://127.0.0.1:3000/d/execplanner",
        "EXECPLANNER_PLANNER_NAMESPACE_TEMPLATE": NAMESPACE_TEMPLATE,
        "EXECPLANNER_PLANNER_POD_ANNOTATIONS": json.dumps({"pod-complete.stage.kwok.x-k8s.io/delay": RUN_SECONDS}),
        "EXECPLANNER_PLANNER_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT_PER_MINUTE),
        "EXECPLANNER_ALLOWED_CHART_REPOSITORIES": json.dumps(ALLOWED_CHART_REPOSITORIES),
    }
    proc = localrun.planner(directory, **env)
    try:
        proc.start(timeout=60)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield proc
    proc.stop()


@pytest.fixture
def users():
    """Fresh user names for one test; their namespaces are deleted afterwards."""
    made: list[str] = []

    def new(prefix: str) -> str:
        made.append(f"{prefix}-{secrets.token_hex(3)}")
        return made[-1]
    yield new
    for user in made:
        kubectl("delete", "namespace", NAMESPACE_TEMPLATE.format(user=user), "--ignore-not-found", "--wait=false")


@pytest.fixture
def token(issuer):
    """A bearer token for a user, as the issuer gives one at the end of a sign-in."""
    def make(user: str) -> str:
        return devidentity.mint(issuer.key, user, issuer=ISSUER, audience=AUDIENCE)
    return make
