"""CPU and wall time of the local target's start-up paths, every process they start included.

    python bench/startup.py [--rounds 2] [--release] [--json]

Each round runs, in a fresh GOLDGATE_HOME, the paths users (and the test suite, which starts hundreds of
stacks) wait on: `goldgate up staging` (no image yet), `goldgate build`, `goldgate deploy staging --image
REF`, one job through the public API (the first worker's cold start), `goldgate status staging`, `goldgate
down staging`, then `goldgate up staging` again (now on its pinned image) and `goldgate down staging`. With
--release it also runs the README's first command, `goldgate release`, and `goldgate down all` (it rewrites
the tracked golden reports).

The stack host runs detached from the CLI that starts it, so `time goldgate up` counts the CLI alone. This
process makes itself the child subreaper (Linux prctl PR_SET_CHILD_SUBREAPER), so every process a step starts
stays in its tree, and a step's CPU is the growth of the tree's user+sys time: the processes it reaped
(getrusage) plus the ones still alive (/proc/<pid>/stat, each with the children it reaped). Linux only. Prints
one line per step and the mean per step over the rounds (or JSON).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
GOLDGATE = [sys.executable, "-m", "goldgate.cli"]
PR_SET_CHILD_SUBREAPER = 36
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+sys+children's user+sys in seconds) of a process, None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / TICK


def tree_cpu() -> float:
    """User+sys seconds of every process this one started, reaped or alive."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    stats = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := _stat(int(p))) is not None}
    me = os.getpid()
    for pid, (_, cpu) in stats.items():
        seen, parent = set(), stats[pid][0]
        while parent not in (0, 1, me) and parent in stats and parent not in seen:
            seen.add(parent)
            parent = stats[parent][0]
        if parent == me and pid != me:
            total += cpu
    return total


def reap() -> None:
    """Collect the orphans this subreaper inherited that have exited (called between steps only: no step's own
    subprocess is waited for here)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Round:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "GOLDGATE_HOME": str(home)}
        self.steps: dict[str, dict[str, float]] = {}

    def step(self, name: str, fn: Any) -> Any:
        reap()
        cpu0, wall0 = tree_cpu(), time.monotonic()
        out = fn()
        wall = time.monotonic() - wall0
        reap()
        self.steps[name] = {"cpu_s": round(tree_cpu() - cpu0, 3), "wall_s": round(wall, 3)}
        print(f"  {name:28s} cpu {self.steps[name]['cpu_s']:6.2f} s   wall {wall:6.2f} s", file=sys.stderr)
        return out

    def cli(self, *args: str) -> str:
        done = subprocess.run([*GOLDGATE, *args], cwd=REPO, env=self.env, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            said = done.stderr.strip()[-500:]
            raise SystemExit(f"goldgate {' '.join(args)} exited {done.returncode}: {said}")
        return done.stdout

    def job(self) -> None:
        status = json.loads(self.cli("status", "staging", "--json"))
        token = (self.home / "stacks" / "staging" / "secrets" / "api_token").read_text().strip()
        with httpx.Client(base_url=status["api_url"], headers={"Authorization": f"Bearer {token}"},
                          timeout=30) as api:
            created = api.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img",
                                                          "inputs": {"prompt": "a lighthouse at dusk"}})
            created.raise_for_status()
            job_id = created.json()["job_id"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                state = api.get(f"/api/status/{job_id}").json()["status"]
                if state in ("completed", "failed", "cancelled", "timed_out"):
                    if state != "completed":
                        raise SystemExit(f"job {job_id} ended {state}")
                    return
                time.sleep(0.05)
        raise SystemExit(f"job {job_id} did not finish in 120 s")

    def run(self, release: bool) -> dict[str, dict[str, float]]:
        self.step("up staging (no image)", lambda: self.cli("up", "staging"))
        ref = self.step("build", lambda: self.cli("build", "--json"))
        image = json.loads(ref)["image"]
        self.step("deploy staging", lambda: self.cli("deploy", "staging", "--image", image))
        self.step("first job (worker cold start)", self.job)
        self.step("status staging", lambda: self.cli("status", "staging"))
        self.step("down staging", lambda: self.cli("down", "staging"))
        self.step("up staging (pinned image)", lambda: self.cli("up", "staging"))
        self.step("down staging again", lambda: self.cli("down", "staging"))
        if release:
            self.step("release", lambda: self.cli("release"))
            self.step("down all", lambda: self.cli("down", "all"))
        return self.steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/startup.py")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--release", action="store_true", help="also `goldgate release` and `down all`")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not Path("/proc/self/stat").exists():
        raise SystemExit("bench/startup.py needs Linux (/proc and prctl)")
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed")
    rounds = []
    for n in range(args.rounds):
        print(f"round {n + 1}", file=sys.stderr)
        home = Path(tempfile.mkdtemp(prefix="goldgate-startup-"))
        try:
            rounds.append(Round(home / ".goldgate").run(args.release))
        finally:
            subprocess.run([*GOLDGATE, "down", "all"], cwd=REPO,
                           env={**os.environ, "GOLDGATE_HOME": str(home / ".goldgate")},
                           capture_output=True, check=False)
            reap()
            shutil.rmtree(home, ignore_errors=True)
    mean = {name: {k: round(statistics.mean(r[name][k] for r in rounds), 3) for k in ("cpu_s", "wall_s")}
            for name in rounds[0]}
    if args.json:
        print(json.dumps({"rounds": rounds, "mean": mean}, indent=2))
    else:
        for name, m in mean.items():
            print(f"{name:30s} cpu {m['cpu_s']:6.2f} s   wall {m['wall_s']:6.2f} s")
        print(f"{'total':30s} cpu {sum(m['cpu_s'] for m in mean.values()):6.2f} s   "
              f"wall {sum(m['wall_s'] for m in mean.values()):6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
