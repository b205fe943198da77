"""``execplanner``: the command line for the planner's HTTP service.

Talks to the planner at ``--url`` (``$EXECPLANNER_URL``, else http://127.0.0.1:8080) with a
bearer token (``--token``, ``--token-file``, ``$EXECPLANNER_TOKEN``). Errors are one line on
stderr and an exit code: 2 for usage errors, 1 for server and network errors; never a
traceback (``EXECPLANNER_DEBUG=1`` shows one for an internal error).
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Sequence, TextIO

from execplanner import __version__
from execplanner.cli import commands, sites
from execplanner.cli.client import CliError, Client

DEFAULT_URL = "http://127.0.0.1:8080"
OUTPUTS = ("table", "json", "yaml")

__all__ = ["main", "build_parser", "CliError"]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with where to find help), exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        raise CliError(f"{message} (see '{self.prog} --help')", 2)


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def notebook_options(group) -> None:
    """A Jupyter notebook task: its URL, mode and (a workshop) sessions."""
    group.add_argument("--notebook", "--location", dest="notebook", metavar="URL",
                       help="a Jupyter notebook's http(s) URL (type uri://jupyter-notebook); --image is then the "
                            "notebook server's image (optional)")
    group.add_argument("--mode", choices=("interactive", "batch"),
                       help="with --notebook: a notebook server per session (interactive, the default) or the "
                            "notebook run top to bottom (batch)")
    group.add_argument("--sessions", type=count, metavar="N",
                       help="with --notebook: N identical notebook servers (a workshop), booked all or none, each "
                            "of the --cores and --memory minimum")


def build_parser() -> Parser:
    # The global options are accepted before and after the command; SUPPRESS keeps a
    # value given before the command from being reset by the subcommand's defaults.
    common = Parser(add_help=False, argument_default=argparse.SUPPRESS)
    g = common.add_argument_group("connection and output")
    g.add_argument("--url", help=f"the planner's base URL (default: $EXECPLANNER_URL or {DEFAULT_URL})")
    g.add_argument("--site", action="append", metavar="NAME=URL",
                   help="a site's planner, instead of --url (repeatable): ask, offers, runs and calendar go to "
                        "every site; accept, reject, cancel, logs and result to the site that knows the id")
    g.add_argument("--token", help="bearer token (default: $EXECPLANNER_TOKEN)")
    g.add_argument("--token-file", metavar="PATH", help="read the bearer token from this file")
    g.add_argument("-o", "--output", choices=OUTPUTS, help="table (default), or the server's answer as json or yaml")
    g.add_argument("--timeout", type=positive, metavar="SECONDS", help="per HTTP request (default 30)")

    parser = Parser(prog="execplanner", parents=[common],
                    description="Ask the execplanner planner whether and when a task can run; get, accept "
                                "and follow offers, UWS jobs and the calendar.")
    parser.add_argument("--version", action="version", version=f"execplanner {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=Parser)

    def add(name: str, help: str, description: str = "") -> Parser:
        return sub.add_parser(name, parents=[common], help=help, description=description or help)

    p = add("ask", "can the planner run this? (POST /accepts: YES or NO, what is offered, why not)")
    task = p.add_argument_group("the task")
    task.add_argument("--image", help="a container image (tasktype uri://docker-container)")
    task.add_argument("--chart", help="a helm chart (tasktype uri://kubernetes-helm)")
    task.add_argument("--repository", help="the chart's repository")
    task.add_argument("--chart-version", metavar="VERSION", help="the chart's version")
    notebook_options(task)
    task.add_argument("-f", "--file", metavar="PATH", help="the request body, YAML or JSON ('-' = stdin); "
                                                            "the options above override its fields")
    res = p.add_argument_group("resources (VALUE, or MIN-MAX)")
    res.add_argument("--cores", metavar="RANGE", help="e.g. 1-4 (or 500m)")
    res.add_argument("--memory", metavar="RANGE", help="e.g. 1G-8G or 512Mi-2Gi (at least 1Mi; a bare number is bytes)")
    res.add_argument("--duration", metavar="RANGE", help="e.g. 10m-1h (also PT1H)")
    res.add_argument("--startup", metavar="RANGE", help="how soon it must start: MAX or MIN-MAX, e.g. 1h")
    p.set_defaults(func=commands.cmd_ask)

    def offer_set_options(p: Parser, args_help: str = "the container's entrypoint and arguments (after --)") -> None:
        """What to ask offers for (POST /offersets): a container or a helm chart, its size and schedule."""
        p.add_argument("command", nargs="*", metavar="ARG", help=args_help)
        task = p.add_argument_group("the task: a container or a helm chart")
        task.add_argument("--image", help="the container image, e.g. busybox:1.36")
        task.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                          help="an environment variable of the container (repeatable)")
        task.add_argument("--chart", help="a helm chart (type uri://kubernetes-helm): a name in --repository, an "
                                          "oci:// reference or a packaged chart's URL; its pods size the offers")
        task.add_argument("--repository", help="the chart's repository")
        task.add_argument("--chart-version", metavar="VERSION", help="the chart's version")
        task.add_argument("--values", metavar="PATH", help="the chart's values, a YAML file ('-' = stdin)")
        notebook_options(task)
        p.add_argument("--name", help="a label for the offer set (default: the image or the chart)")
        p.add_argument("--cores", metavar="RANGE", help="cores, VALUE or MIN-MAX, e.g. 1-4 (for a chart: a cap)")
        p.add_argument("--memory", metavar="RANGE",
                       help="memory in GiB, VALUE or MIN-MAX, e.g. 1-8 (8Gi, 512Mi also read; for a chart: a cap)")
        p.add_argument("--duration", help="how long it runs, e.g. 1h, 90m, PT2H")
        p.add_argument("--start", action="append", default=[], metavar="INTERVAL",
                       help="when it may start, START/END or START/DURATION; START may be 'now' or '+30m' "
                            "(repeatable), e.g. now/2h or 2026-11-24T15:00:00Z/PT2H")
        p.add_argument("--count", type=count, help="how many offers to ask for")
        p.add_argument("--wait", type=positive, default=120.0, metavar="SECONDS",
                       help="how long to wait for the planner's answer (default 120)")
        p.add_argument("-f", "--file", metavar="PATH", help="the OfferSetRequest, YAML or JSON ('-' = stdin); "
                                                            "the options override its fields")

    p = add("offers", "get offers for a container or a helm chart (POST /offersets): the sessions on offer",
            "Ask for offers (IVOA ExecutionBroker offer set) for a container (--image) or a helm chart "
            "(--chart) and show them once the planner has answered. Accept one with "
            "'execplanner accept SESSION'.")
    offer_set_options(p)
    p.set_defaults(func=commands.cmd_offers)

    p = add("accept", "accept an offer (POST /sessions/UUID, state ACCEPTED), or book the best offer for a task",
            "Accept the offer SESSION (execplanner accept SESSION); or, given a task instead (--image or "
            "--chart, with the options of 'execplanner offers'), ask for offers and accept the first, the best one.")
    offer_set_options(p, "SESSION, the session's uuid; or, with --image, the container's entrypoint and "
                         "arguments (after --)")
    p.set_defaults(func=commands.cmd_accept)

    p = add("reject", "reject an offer (POST /sessions/UUID, state REJECTED)")
    p.add_argument("session", metavar="SESSION", help="the session's uuid")
    p.set_defaults(func=commands.cmd_reject)

    p = add("runs", "my sessions and UWS jobs, in one table (GET /sessions, GET /uws/jobs)")
    p.set_defaults(func=commands.cmd_runs)

    for name, help, func in (("logs", "a session's or UWS job's log", commands.cmd_logs),
                             ("cancel", "cancel a session (state CANCELLED) or abort a UWS job (PHASE=ABORT)",
                              commands.cmd_cancel)):
        p = add(name, help, help + ". A uuid is tried as a session first, anything else as a UWS job "
                                   "first; the other kind is tried when the first is not found.")
        p.add_argument("id", metavar="ID", help="a session uuid or a UWS job id")
        kind = p.add_mutually_exclusive_group()
        kind.add_argument("--session", action="store_true", help="ID is a session")
        kind.add_argument("--job", action="store_true", help="ID is a UWS job")
        p.set_defaults(func=func)

    p = add("result", "a batch notebook's executed notebook (a session's or UWS job's result)",
            "Fetch the executed notebook of a batch notebook (--notebook URL --mode batch) that has completed: "
            "GET /sessions/UUID/result or /uws/jobs/ID/results/notebook. A uuid is tried as a session first, "
            "anything else as a UWS job first.")
    p.add_argument("id", metavar="ID", help="a session uuid or a UWS job id")
    p.add_argument("--out", metavar="PATH", help="write it to this file (default: standard output)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--session", action="store_true", help="ID is a session")
    kind.add_argument("--job", action="store_true", help="ID is a UWS job")
    p.set_defaults(func=commands.cmd_result)

    p = add("calendar", "bookings per node over time, drawn in the terminal (GET /calendar)")
    p.add_argument("--hours", type=positive, default=24.0, help="how far ahead (default 24)")
    p.add_argument("--width", type=count, help="columns to draw in (default: the terminal's width)")
    p.add_argument("--ascii", action="store_true", help="ASCII characters only")
    p.set_defaults(func=commands.cmd_calendar)

    p = add("run", "run a container now as a UWS job, wait for it to end, print its log",
            "Create a UWS job with PHASE=RUN (POST /uws/jobs), show its phase while it runs, then print "
            "its log. Exit code 0 if it COMPLETED, 1 otherwise.")
    p.add_argument("command", nargs="*", metavar="ARG", help="the command and its arguments (after --)")
    p.add_argument("--image", required=True, help="the container image")
    p.add_argument("--cores", help="cores, e.g. 2 or 500m")
    p.add_argument("--memory", help="memory, e.g. 1Gi (a bare number is bytes)")
    p.add_argument("--duration", help="the longest it may run, e.g. 10m (sent as seconds)")
    p.add_argument("--run-id", metavar="LABEL", help="the job's runId, a label of yours")
    p.add_argument("--wait", type=positive, metavar="SECONDS", help="give up waiting after this long (default: no limit)")
    p.add_argument("--no-wait", action="store_true", help="print the job's id and return at once")
    p.set_defaults(func=commands.cmd_run)
    return parser


def _token(args: argparse.Namespace) -> str | None:
    token = getattr(args, "token", None)
    path = getattr(args, "token_file", None) or (None if token else os.environ.get("EXECPLANNER_TOKEN_FILE"))
    if token is None and path:
        try:
            token = Path(path).expanduser().read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read the token file {path}: {exc.strerror or exc}", 2) from None
        if not token:
            raise CliError(f"the token file {path} is empty", 2)
    if token is None:
        token = os.environ.get("EXECPLANNER_TOKEN") or None
    return token.strip() if token else None


def _url(args: argparse.Namespace) -> str:
    url = getattr(args, "url", None) or os.environ.get("EXECPLANNER_URL") or DEFAULT_URL
    if "://" not in url:
        url = "http://" + url
    if not url.startswith(("http://", "https://")):
        raise CliError(f"--url: {url!r} is not an http:// or https:// URL", 2)
    return url.rstrip("/")


def run(argv: Sequence[str] | None, stdout: TextIO, stderr: TextIO) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "subcommand", None):
        raise CliError("say what to do: " + ", ".join(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
                       + " (see 'execplanner --help')", 2)
    output = getattr(args, "output", "table")
    if getattr(args, "site", None):
        pairs = [sites.parse_site(s) for s in args.site]
        if len({name for name, _ in pairs}) != len(pairs):
            raise CliError("--site: each site needs its own name", 2)
        return sites.run_at_sites(args, pairs, _token(args), getattr(args, "timeout", 30.0), output,
                                  lambda client, out: commands.Context(client, output, out, stderr), stdout)
    client = Client(_url(args), _token(args), getattr(args, "timeout", 30.0))
    ctx = commands.Context(client, output, stdout, stderr)
    return args.func(args, ctx)


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 server or network error, 2 usage error)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        return run(argv, stdout, stderr)
    except CliError as exc:
        _say(stderr, f"execplanner: error: {exc.message}")
        return exc.code
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        _say(stderr, "execplanner: interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (| head): say nothing, and keep Python from complaining at exit.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except Exception as exc:  # a bug here, or an answer we did not expect: still one line
        if os.environ.get("EXECPLANNER_DEBUG"):
            traceback.print_exc(file=stderr)
        _say(stderr, f"execplanner: error: internal error ({exc.__class__.__name__}: {exc}); "
                     f"EXECPLANNER_DEBUG=1 shows the traceback")
        return 1


def _say(stream: TextIO, line: str) -> None:
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
