"""The docs' runnable examples work: every block of README.md and docs/*.md fenced exactly as
```` ```sh runnable ```` is run with bash against the local control plane.

Each block stands alone (no state is carried from one to the next) and runs from the
checkout's root, as a reader would paste it, with `set -euo pipefail`, KUBECONFIG naming the
local cluster's admin kubeconfig, and on PATH the cluster's own kubectl and helm and the
directory of this Python's scripts (`.venv/bin`: `execplanner`). Only cheap commands that
work without the operator running are marked runnable; tests/unit/test_docs_links.py checks
that there are some.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from . import cluster_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = "sh runnable"
BLOCK_TIMEOUT = 60  # seconds; a runnable block is meant to take a few, on two shared cores
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def runnable_blocks() -> list[tuple[str, str]]:
    """(where, script) of every runnable block, where = 'page:line' of its opening fence."""
    found = []
    for page in PAGES:
        fence: tuple[str, int, str, list[str]] | None = None  # (marker, line, info, body)
        for number, line in enumerate(page.read_text().splitlines(), 1):
            m = FENCE.match(line)
            if fence is None:
                if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                    fence = (m.group(1), number, m.group(2).strip(), [])
            elif m and m.group(1)[0] == fence[0][0] and len(m.group(1)) >= len(fence[0]) and not m.group(2).strip():
                if fence[2] == RUNNABLE:
                    found.append((f"{page.relative_to(ROOT)}:{fence[1]}", "\n".join(fence[3]) + "\n"))
                fence = None
            else:
                fence[3].append(line)
    return found


BLOCKS = runnable_blocks()


def environment(kubeconfig: str) -> dict[str, str]:
    """A reader's shell in the checkout: no make of ours around it, the tools on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    tools = [str(Path(cluster_env.binary("kubectl")).parent), str(Path(cluster_env.binary("helm")).parent),
             str(Path(sys.executable).parent), str(ROOT / ".venv" / "bin")]
    env["PATH"] = os.pathsep.join([*dict.fromkeys(tools), env.get("PATH", "")])
    env["KUBECONFIG"] = kubeconfig
    return env


def test_there_are_runnable_blocks():
    assert BLOCKS, f"no ```{RUNNABLE} block in README.md or docs/*.md"


@pytest.mark.parametrize("where,script", BLOCKS, ids=[where for where, _ in BLOCKS])
def test_runnable_block(kubeconfig: str, where: str, script: str):
    # In a session of its own, so that a block that hangs is stopped with all it started.
    proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=environment(kubeconfig),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{where}: the block did not finish within {BLOCK_TIMEOUT} s\n--- block ---\n{script}"
                    f"--- stdout ---\n{out[-3000:]}\n--- stderr ---\n{err[-3000:]}", pytrace=False)
    assert proc.returncode == 0, (
        f"{where}: exit code {proc.returncode}\n--- block ---\n{script}"
        f"--- stdout ---\n{out[-3000:]}\n--- stderr ---\n{err[-3000:]}")
