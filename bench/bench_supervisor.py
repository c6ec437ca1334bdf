"""Supervisor figures: resident memory with N children, and SIGKILL-to-replacement latency.

Plain script, no assertions: `python bench/bench_supervisor.py`. Each figure is printed next to
a baseline measured in the same run on the same machine.
"""

from __future__ import annotations

import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import trio

from ingestor.supervisor.child import ChildSpec, OutputSettings
from ingestor.supervisor.logfmt import SecretMasker
from ingestor.supervisor.policy import RestartSettings
from ingestor.supervisor.status_file import RoleStatus, State, StatusBoard, read_status
from ingestor.supervisor.supervise import Supervisor, SupervisorOptions

CHILD_COUNTS = (1, 10, 50)
TRIALS = 7
SLEEPER = ("sleep", "1000000")
PY_SLEEPER = (sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(1e6)")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"min {min(ms):7.1f}  median {statistics.median(ms):7.1f}  max {max(ms):7.1f} ms"


# --- memory -------------------------------------------------------------------------------


def serve(count: int, status_path: str) -> None:
    """Child mode: supervise `count` sleepers until SIGTERM (measured from outside)."""
    specs = [
        ChildSpec(f"bench{i}", SLEEPER, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        for i in range(count)
    ]
    sup = Supervisor(
        specs,
        SupervisorOptions(restart=RestartSettings(startsecs=0.1), grace_seconds=5),
        board=StatusBoard(Path(status_path), [s.name for s in specs]),
        output=OutputSettings(sink=lambda line: None, masker=SecretMasker()),
    )
    sys.exit(trio.run(sup.run))


def idle() -> None:
    """Child mode: the same imports as `serve`, no supervision (the memory baseline)."""
    signal.sigwait({signal.SIGTERM})


def measure_memory(count: int | None) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        status_path = Path(tmp) / "status.json"
        mode = ["idle"] if count is None else ["serve", str(count), str(status_path)]
        if count is None:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            proc = subprocess.Popen([sys.executable, __file__, *mode])
        finally:
            if count is None:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if count is None:
                    time.sleep(1.0)
                    break
                status = read_status(status_path)
                roles = (status or {}).get("roles", {})
                if len(roles) == count and all(r["state"] == "RUNNING" for r in roles.values()):
                    time.sleep(0.5)
                    break
                time.sleep(0.05)
            return rss_kib(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


# --- restart latency ------------------------------------------------------------------------


async def restart_latency(restart: RestartSettings, trials: int) -> dict[str, list[float]]:
    """Times from SIGKILL of the child to: replacement spawned, RUNNING, first output line.

    Transition times are taken by the status listener and the output sink as they happen;
    the loop below only polls to know when to go on.
    """
    spawned: dict[int, float] = {}
    running: dict[int, float] = {}
    lines: list[float] = []

    def listener(role: str, status: RoleStatus) -> None:
        now = time.perf_counter()
        if status.pid and status.state is State.STARTING:
            spawned.setdefault(status.pid, now)
        if status.pid and status.state is State.RUNNING:
            running.setdefault(status.pid, now)

    board = StatusBoard(None, ["bench"], listener=listener)
    sup = Supervisor(
        [ChildSpec("bench", PY_SLEEPER, dict(os.environ))],
        SupervisorOptions(restart=restart, grace_seconds=5),
        board=board,
        output=OutputSettings(
            sink=lambda line: lines.append(time.perf_counter()), masker=SecretMasker()
        ),
    )
    out: dict[str, list[float]] = {"spawned": [], "running": [], "first line": []}

    async def until(condition: Callable[[], bool]) -> None:
        while not condition():
            await trio.sleep(0.001)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(sup.run, handle_signals=False))
        with trio.fail_after(60 + trials * 10):
            for _ in range(trials):
                await until(lambda: board.get("bench").state is State.RUNNING and bool(lines))
                await trio.sleep(0.2)
                old = board.get("bench").pid
                assert old is not None
                seen = len(lines)
                killed_at = time.perf_counter()
                os.kill(old, signal.SIGKILL)
                await until(partial(_replaced, board, running, lines, old, seen))
                new = board.get("bench").pid
                assert new is not None
                out["spawned"].append(spawned[new] - killed_at)
                out["running"].append(running[new] - killed_at)
                out["first line"].append(lines[seen] - killed_at)
        sup.stop()
    return out


def _replaced(
    board: StatusBoard, running: dict[int, float], lines: list[float], old: int, seen: int
) -> bool:
    pid = board.get("bench").pid
    return pid is not None and pid != old and pid in running and len(lines) > seen


def baseline_popen(trials: int) -> list[float]:
    """A bare subprocess.Popen + wait of `python -c pass`."""
    times = []
    for _ in range(trials):
        start = time.perf_counter()
        subprocess.Popen([sys.executable, "-c", "pass"]).wait()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    # The kills below are deliberate: keep the supervisor's restart warnings out of the figures.
    logging.getLogger("ingestor.supervisor").setLevel(logging.ERROR)
    print("== supervisor resident memory (VmRSS), children are `sleep` processes")
    base = measure_memory(None)
    print(f"  baseline: python with the supervisor imported, idle   {base / 1024:7.1f} MiB")
    for count in CHILD_COUNTS:
        rss = measure_memory(count)
        per_child = (rss - base) / count
        print(
            f"  supervising {count:3d} children                        {rss / 1024:7.1f} MiB"
            f"  (+{(rss - base) / 1024:.1f} MiB, {per_child:.0f} KiB per child)"
        )

    print(f"\n== SIGKILL of a child -> replacement ({TRIALS} trials each)")
    popen = baseline_popen(TRIALS)
    print(f"  baseline: Popen + wait of `python -c pass`   {summary(popen)}")
    # Each trial kills a child that has run longer than --stable-seconds, so every trial sees
    # the first-failure delay (not a growing backoff) and never approaches FATAL.
    stable = {"stable_seconds": 0.1}
    configs = {
        "no backoff, --startsecs 0": RestartSettings(backoff_initial=0, startsecs=0, **stable),
        "--backoff-initial 0.1 --startsecs 0.2 (tests)": RestartSettings(
            backoff_initial=0.1, startsecs=0.2, **stable
        ),
        "defaults (--backoff-initial 1 --startsecs 1)": RestartSettings(**stable),
    }
    base_median = statistics.median(popen)
    for label, restart in configs.items():
        trials = TRIALS if restart.backoff_initial < 1 else 3
        figures = trio.run(restart_latency, restart, trials)
        print(f"  {label}:")
        for what, values in figures.items():
            ratio = statistics.median(values) / base_median
            print(f"    kill -> {what:<11} {summary(values)}   x{ratio:.2f} of baseline")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "idle":
        idle()
    else:
        main()
