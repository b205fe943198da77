"""The CLI across sites (--site NAME=URL): every site asked, ranked, the unreachable named."""
from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from execplanner import cli


def _planner(answer: dict | None, sessions: set[str] = frozenset()) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/accepts":
                self._send(200, answer)
            elif self.path.startswith("/sessions/") and self.path.split("/")[2] in sessions:
                self._send(200, {"uuid": self.path.split("/")[2], "state": "ACCEPTED"})
            else:
                self._send(404, {"error": f"there is nothing at {self.path}", "status": 404})

        def log_message(self, *a) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def planners():
    servers = {
        "late": _planner({"responseword": "YES", "start": "2026-12-02T12:00:00Z", "resources": {"mincores": 4}}),
        "soon": _planner({"responseword": "YES", "start": "2026-12-02T09:00:00Z", "resources": {"mincores": 4}},
                         sessions={"s-1"}),
        "small": _planner({"responseword": "NO", "reponseinfo": {"reasons": [{"text": "nodes too small"}]}}),
    }
    yield {name: f"http://127.0.0.1:{s.server_address[1]}" for name, s in servers.items()}
    for s in servers.values():
        s.shutdown()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_ask_goes_to_every_site_ranked_by_answer_then_start(planners):
    sites = [a for name, url in planners.items() for a in ("--site", f"{name}={url}")]
    code, out, err = run("ask", "--image", "busybox", "--cores", "4", *sites, "--site", "gone=http://127.0.0.1:9")
    assert code == 0, err
    ranking = [line.split()[0] for line in out.splitlines()[1:5]]
    assert ranking == ["soon", "late", "small", "gone"], out
    assert "nodes too small" in out and "unreachable" in out


def test_accept_goes_to_the_site_that_knows_the_session(planners):
    sites = [a for name, url in planners.items() for a in ("--site", f"{name}={url}")]
    code, out, err = run("accept", "s-1", *sites)
    assert code == 0, err
    assert out.startswith("── soon")


def test_a_site_must_be_name_equals_url():
    code, _, err = run("ask", "--image", "busybox", "--site", "nowhere")
    assert code == 2 and "NAME=URL" in err
