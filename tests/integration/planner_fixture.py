"""The planner service as the tests run it: its own process (`python -m execplanner.planner`)
with the ServiceAccount of deploy/planner-rbac.yaml, bearer JWTs checked against a JWKS
served on loopback, a static token file beside it, and the operator (operator_fixture) doing
the booking. conftest.py registers the fixtures for the whole session.
"""
from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from execplanner import devidentity, localrun

from .operator_fixture import ALLOWED_CHART_REPOSITORIES


ISSUER, AUDIENCE = "https://issuer.test.execplanner.io", "execplanner-tests"
STATIC_TOKEN, STATIC_USER = "static-token-for-carol-0123456789", "carol"
RUN_SECONDS = "3s"  # how long task pods "run" on the fake nodes (the planner's pod annotation)
MAX_WAIT = 20
# The shared planner's rate limit: high enough that the suite's own requests (all anonymous
# ones come from 127.0.0.1 and share one allowance) never meet it (the limit itself is tested
# in tests/unit/planner/test_protections.py).
RATE_LIMIT_PER_MINUTE = 100_000


@dataclass
class Tokens:
    key: object

    def __call__(self, user: str, **claims) -> str:
        return devidentity.mint(self.key, user, issuer=ISSUER, audience=AUDIENCE, **claims)

    def header(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self(user)}"}


@pytest.fixture(scope="session")
def jwks_key(tmp_path_factory: pytest.TempPathFactory):
    key = devidentity.private_key(tmp_path_factory.mktemp("issuer"))
    server = localrun.JwksServer(devidentity.jwks(key))
    yield key, server
    server.close()


@pytest.fixture(scope="session")
def tokens(jwks_key) -> Tokens:
    return Tokens(jwks_key[0])


@pytest.fixture(scope="session")
def planner(kubeconfig: str, operator, jwks_key, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811
    """The planner, ready (its watches have listed); fails the tests that use it if it cannot start."""
    directory: Path = tmp_path_factory.mktemp("planner")
    token_file = directory / "tokens.csv"
    token_file.write_text(f"# token,user\n{STATIC_TOKEN},{STATIC_USER}\n")
    env = {
        "EXECPLANNER_PLANNER_JWT_ISSUER": ISSUER,
        "EXECPLANNER_PLANNER_JWT_AUDIENCE": AUDIENCE,
        "EXECPLANNER_PLANNER_JWKS_URL": jwks_key[1].url,
        "EXECPLANNER_PLANNER_TOKEN_FILE": str(token_file),
        "EXECPLANNER_PLANNER_NAMESPACE_TEMPLATE": "t-xp-{user}",
        "EXECPLANNER_PLANNER_POD_ANNOTATIONS": json.dumps({"pod-complete.stage.kwok.x-k8s.io/delay": RUN_SECONDS}),
        "EXECPLANNER_PLANNER_MAX_WAIT_SECONDS": str(MAX_WAIT),
        "EXECPLANNER_PLANNER_MAX_BODY_BYTES": str(64 * 1024),
        "EXECPLANNER_PLANNER_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT_PER_MINUTE),
        # Charts from loopback only (chart_repo_fixture serves them on 127.0.0.1); the default,
        # an empty list, fetches no chart at all.
        "EXECPLANNER_ALLOWED_CHART_REPOSITORIES": json.dumps(ALLOWED_CHART_REPOSITORIES),
    }
    proc = localrun.planner(directory, **env)
    proc.start(timeout=60)
    yield proc
    proc.stop()


def get_json(url: str, headers: dict | None = None) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
        return json.loads(r.read())
