"""Slurm for bench/peers_slurm.py: the daemons (cluster/slurm.sh), its client commands
(reservations, `sbatch --test-only`, `sdiag`), the parsing of what they print, and a
count-based model of booked cores per node (the "oracle" that keeps the bench's bookings
free of conflicts with each other). Pure parts are unit-tested (tests/unit/test_peers_slurm.py).

Times given to and read from Slurm are whole seconds in UTC: every client command runs with
TZ=UTC, as do the daemons (cluster/slurm.sh inherits the bench's environment).
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLURM_SH = ROOT / "cluster" / "slurm.sh"

WILL_RUN = re.compile(r"Job \d+ to start at (\S+) using (\d+) processors on nodes (\S+)")


def slurm_time(t: float) -> str:
    """Epoch seconds -> Slurm's local-time form (UTC here): 2026-12-01T20:00:00."""
    return datetime.fromtimestamp(int(t), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def parse_slurm_time(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp())


@dataclass(frozen=True)
class WillRun:
    """What `sbatch --test-only` said: a start (epoch s) and the nodes, or why not."""
    start: int | None
    nodes: str | None
    message: str
    seconds: float  # the whole command's wall time


def parse_will_run(text: str, seconds: float = 0.0) -> WillRun:
    """sbatch --test-only's answer (it writes to stderr): "sbatch: Job 19 to start at
    2026-12-01T20:00:00 using 16 processors on nodes kwok-node-5 in partition batch", or an
    error such as "allocation failure: Requested node configuration is not available"."""
    m = WILL_RUN.search(text)
    message = " ".join(text.split())
    if m:
        return WillRun(parse_slurm_time(m.group(1)), m.group(3), message, seconds)
    return WillRun(None, None, message.removeprefix("allocation failure: ") or "no answer", seconds)


def parse_sdiag(text: str) -> dict:
    """The figures of `sdiag` a comparison needs: the controller's server threads, the main
    and backfill schedulers' cycle times (µs), and per RPC type its count and mean time (µs)."""
    out: dict = {"rpc": {}}
    section = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Main schedule statistics"):
            section = "main"
        elif s.startswith("Backfilling stats"):
            section = "backfill"
        elif s.startswith("Remote Procedure Call statistics by message type"):
            section = "rpc"
        elif s.startswith("Remote Procedure Call statistics by user"):
            section = "users"
        m = re.match(r"Server thread count:\s*(\d+)", s)
        if m:
            out["server_threads"] = int(m.group(1))
        m = re.match(r"(Last|Max|Mean) cycle:\s*(\d+)", s)
        if m and section in ("main", "backfill"):
            out[f"{section}_{m.group(1).lower()}_cycle_us"] = int(m.group(2))
        m = re.match(r"Total cycles:\s*(\d+)", s)
        if m and section in ("main", "backfill"):
            out[f"{section}_cycles"] = int(m.group(1))
        m = re.match(r"(\w+)\s*\(\s*\d+\)\s*count:(\d+)\s+ave_time:(\d+)\s+total_time:(\d+)", s)
        if m and section == "rpc":
            out["rpc"][m.group(1)] = {"count": int(m.group(2)), "ave_time_us": int(m.group(3)),
                                      "total_time_us": int(m.group(4))}
    return out


def reservation_args(name: str, start: float, minutes: int, nodes: list[str], cores: int | None) -> list[str]:
    """`scontrol create reservation` for `cores` cores on the one node of `nodes` (CoreCnt), or
    for whole nodes when cores is None; start in the past means now."""
    args = ["scontrol", "create", "reservation", f"ReservationName={name}",
            f"StartTime={slurm_time(start) if start > time.time() else 'now'}", f"Duration={minutes}",
            f"Nodes={','.join(nodes)}", "Users=root"]
    if cores is not None:
        args.append(f"CoreCnt={cores}")
    return args


def any_node_reservation_args(name: str, start: float, minutes: int, cores: int) -> list[str]:
    """A reservation of `cores` cores on one node Slurm picks (a booking attempt for a question)."""
    return ["scontrol", "create", "reservation", f"ReservationName={name}",
            f"StartTime={slurm_time(start) if start > time.time() else 'now'}", f"Duration={minutes}",
            "NodeCnt=1", f"CoreCnt={cores}", "Users=root"]


def reservation_message(out: str) -> str:
    """scontrol's answer without its note on partitions (printed for every reservation of
    nodes that is not made by node name... and, on stderr, for some that are)."""
    skip = ("Note, unless nodes are directly requested", "If no partition is requested")
    return " ".join(line.strip() for line in out.splitlines() if line.strip() and not line.strip().startswith(skip))


def will_run_args(cores: int, mem_mib: int, minutes: int, begin: float | None, node: str | None = None) -> list[str]:
    args = ["sbatch", "--test-only", "-N1", "-n1", f"--cpus-per-task={cores}", f"--mem={mem_mib}M",
            f"--time={minutes}", "--job-name=peers-question", "--output=/dev/null"]
    if node:
        args.append(f"--nodelist={node}")
    if begin is not None and begin > time.time():
        args.append(f"--begin={slurm_time(begin)}")
    return [*args, "--wrap", "true"]


class Slurm:
    """The daemons of cluster/slurm.sh for the cluster env.sh describes (the environment the
    caller set), and the client commands against them."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = {**os.environ, **(env or {}), "TZ": "UTC"}
        out = self._sh("env").stdout
        values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        self.conf = values["SLURM_CONF"]
        self.version = values["SLURM_VERSION"]
        self.sched_params = values["SLURM_SCHED_PARAMS"]
        self.env["SLURM_CONF"] = self.conf

    def _sh(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SLURM_SH), *args], env=self.env, capture_output=True, text=True,
                              check=check)

    def up(self) -> str:
        p = self._sh("up", check=False)
        if p.returncode != 0:
            raise RuntimeError(f"cluster/slurm.sh up failed:\n{p.stderr[-4000:]}")
        return p.stderr

    def down(self, purge: bool = False) -> str:
        return self._sh("down", *(["--purge"] if purge else []), check=False).stderr

    def run(self, args: list[str], timeout: float = 60) -> tuple[int, str, float]:
        """(exit code, stdout + stderr, wall seconds) of one client command."""
        t = time.perf_counter()
        p = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout)
        return p.returncode, (p.stdout + p.stderr).strip(), time.perf_counter() - t

    def will_run(self, cores: int, mem_mib: int, minutes: int, begin: float | None, node: str | None = None) -> WillRun:
        rc, out, secs = self.run(will_run_args(cores, mem_mib, minutes, begin, node))
        return parse_will_run(out, secs)

    def reserve(self, args: list[str]) -> tuple[bool, str, float]:
        rc, out, secs = self.run(args)
        return rc == 0 and "Reservation created" in out, reservation_message(out), secs

    def delete_reservation(self, name: str) -> None:
        rc, out, _ = self.run(["scontrol", "delete", f"ReservationName={name}"])
        if rc != 0:
            raise RuntimeError(f"scontrol delete reservation {name}: {out}")

    def reservations(self) -> set[str]:
        rc, out, _ = self.run(["scontrol", "show", "reservation", "-o"], timeout=120)
        return set(re.findall(r"ReservationName=(\S+)", out))

    def nodes(self) -> dict[str, tuple[int, int]]:
        """Each node's (CPUs, RealMemory MiB), as the controller has them."""
        rc, out, _ = self.run(["scontrol", "show", "nodes", "-o"], timeout=120)
        found = {}
        for line in out.splitlines():
            m = re.search(r"NodeName=(\S+).*?CPUTot=(\d+).*?RealMemory=(\d+)", line)
            if m:
                found[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        return found

    def sdiag(self) -> dict:
        return parse_sdiag(self.run(["sdiag"])[1])

    def reset_sdiag(self) -> None:
        self.run(["sdiag", "--reset"])


# -- a count-based model of booked cores ----------------------------------------------------------

@dataclass
class CoreBook:
    """Booked cores per node over time, counted per instant (as execplanner counts them; Slurm
    reserves particular cores, see docs/performance.md). Intervals are [start, end)."""
    cores: int  # per node
    _times: dict[str, list[int]] = field(default_factory=dict)  # breakpoints per node
    _usage: dict[str, list[int]] = field(default_factory=dict)  # usage from each breakpoint on
    _held: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)  # (start, end, cores) per node

    def _split(self, node: str, t: int) -> int:
        times = self._times.setdefault(node, [])
        usage = self._usage.setdefault(node, [])
        i = bisect_left(times, t)
        if i < len(times) and times[i] == t:
            return i
        times.insert(i, t)
        usage.insert(i, usage[i - 1] if i else 0)
        return i

    def peak(self, node: str, start: int, end: int) -> int:
        times, usage = self._times.get(node, []), self._usage.get(node, [])
        i = max(0, bisect_right(times, start) - 1)
        j = bisect_left(times, end)
        level = [usage[k] for k in range(i, j) if k + 1 >= len(times) or times[k + 1] > start]
        return max(level, default=0)

    def fits(self, nodes: list[str], cores: int, start: int, end: int) -> bool:
        return all(self.peak(n, start, end) + cores <= self.cores for n in nodes)

    def overlapping(self, node: str, start: int, end: int) -> int:
        """The cores of every booking on `node` that overlaps [start, end) at all, added up: what
        a planner that holds particular cores for a booking's whole time (Slurm) may have to
        keep clear of, where counting per instant needs only peak()."""
        return sum(c for s, e, c in self._held.get(node, ()) if s < end and start < e)

    def book(self, nodes: list[str], cores: int, start: int, end: int) -> None:
        for n in nodes:
            self._held.setdefault(n, []).append((start, end, cores))
            i = self._split(n, start)
            j = self._split(n, end)
            for k in range(i, j):
                self._usage[n][k] += cores

    def earliest(self, nodes: list[str], cores: int, duration: int, lo: int, hi: int) -> int | None:
        """The earliest start in [lo, hi] at which some node of `nodes` holds `cores` for
        `duration` (the same search as execplanner's, for explaining an answer)."""
        candidates = {lo} | {t for n in nodes for t in self._times.get(n, []) if lo < t <= hi}
        for t in sorted(candidates):
            if any(self.peak(n, t, t + duration) + cores <= self.cores for n in nodes):
                return t
        return None
