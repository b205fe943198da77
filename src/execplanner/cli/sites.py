"""Several sites (``--site NAME=URL``, repeatable, beside ``--url``): a command asked of each
site's planner, with the same token (the sites share one sign-on).

- ``ask``: every site at once; a table ranks them (YES first, then the earliest start), then
  each site's answer in that order.
- ``offers``, ``runs``, ``calendar``: each site's in turn, under the site's name.
- ``accept``, ``reject``, ``cancel``, ``logs``, ``result`` with an id: at the site that knows
  it (an offer is accepted where it was made). ``offers`` first, then ``accept SESSION``:
  with several sites, accepting a task's first offer directly would accept one at each.

A site that cannot be reached or answers with an error is named, and the others still
answer; the exit code is 1 only when no site answered.
"""
from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from execplanner.cli.client import CliError, Client
from execplanner.cli.render import table

ONE_SITE = {"accept", "reject", "cancel", "logs", "result"}  # with an id: the site that knows it
EACH_SITE = {"ask", "offers", "runs", "calendar"}


def parse_site(text: str) -> tuple[str, str]:
    name, sep, url = text.partition("=")
    name, url = name.strip(), url.strip()
    if not sep or not name or not url:
        raise CliError(f"--site: {text!r} is not NAME=URL (e.g. --site cern=https://xp.cern.example)", 2)
    if "://" not in url:
        url = "http://" + url
    if not url.startswith(("http://", "https://")):
        raise CliError(f"--site {name}: {url!r} is not an http:// or https:// URL", 2)
    return name, url.rstrip("/")


class RecordingClient(Client):
    """A client that keeps the JSON answers it was given (to rank the sites by them)."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.answers: list[Any] = []

    def post_json(self, path: str, body: Any, **kw: Any) -> Any:
        answer = super().post_json(path, body, **kw)
        self.answers.append(answer)
        return answer


@dataclass
class SiteRun:
    name: str
    url: str
    code: int = 0
    error: str | None = None
    text: str = ""
    answers: list[Any] = field(default_factory=list)


def run_at_sites(args: Any, sites: list[tuple[str, str]], token: str | None, timeout: float, output: str,
                 make_context: Callable[[Client, io.StringIO], Any], stdout: Any) -> int:
    command = args.subcommand
    with_id = command in ONE_SITE and bool(getattr(args, "command", None)) and not _task_given(args)
    if command not in EACH_SITE | ONE_SITE:
        raise CliError(f"{command} is asked of one planner: use --url, not --site", 2)
    if command in ONE_SITE and not with_id:
        raise CliError(f"with --site, {command} takes the id of a session or job (for a task: execplanner offers "
                       "--site ... first, then accept SESSION at the site that offered it)", 2)

    def one(site: tuple[str, str]) -> SiteRun:
        run = SiteRun(*site)
        out = io.StringIO()
        client = RecordingClient(run.url, token, timeout)
        try:
            run.code = args.func(args, make_context(client, out))
        except CliError as e:
            run.code, run.error = e.code, e.message
        run.text, run.answers = out.getvalue(), client.answers
        return run

    if with_id:  # the site that knows the id: in turn, stopping at the first that does
        tried = []
        for site in sites:
            run = one(site)
            if run.error is None:
                stdout.write(f"── {run.name} ({run.url})\n{run.text}")
                return run.code
            tried.append(f"{run.name}: {run.error}")
        raise CliError("no site knows it: " + "; ".join(tried))
    with ThreadPoolExecutor(len(sites)) as pool:
        runs = list(pool.map(one, sites))
    if command == "ask":
        runs.sort(key=_rank)
    if output != "table":
        doc = [{"site": r.name, "url": r.url, **({"error": r.error} if r.error else {}),
                "answer": r.answers[-1] if r.answers else None} for r in runs]
        stdout.write(json.dumps(doc, indent=2) + "\n" if output == "json" else _yaml(doc))
    else:
        if command == "ask":
            stdout.write(table(["SITE", "ANSWER", "EARLIEST START"], [
                [r.name, _word(r) if not r.error else "unreachable" if "cannot " in r.error else "error",
                 _start(r) or "-"] for r in runs]) + "\n")
        for r in runs:
            stdout.write(f"\n── {r.name} ({r.url})\n")
            stdout.write(r.text if r.error is None else f"error: {r.error}\n")
    return 0 if any(r.error is None for r in runs) else 1


def _task_given(args: Any) -> bool:
    return any(getattr(args, k, None) for k in ("image", "chart", "notebook", "file"))


def _answer(run: SiteRun) -> dict:
    last = run.answers[-1] if run.answers else None
    return last if isinstance(last, dict) else {}


def _word(run: SiteRun) -> str:
    return str(_answer(run).get("responseword") or "?").upper()


def _start(run: SiteRun) -> str:
    return str(_answer(run).get("start") or "")


def _rank(run: SiteRun) -> tuple:
    return (run.error is not None, _word(run) != "YES", _start(run) or "~")


def _yaml(doc: Any) -> str:
    import yaml
    return yaml.safe_dump(doc, sort_keys=False)
