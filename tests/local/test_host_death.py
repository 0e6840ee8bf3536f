"""A stack host that dies hard (SIGKILL, the OOM killer) leaves no process of its stack behind, and
`goldgate down`/`up` clear away what a host that died before children watched it left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ci_policy import needs
from processes import argv_of, processes_naming, wait_until
from stackfiles import stacks_file

from goldgate.commands.local import ensure_up
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")


def test_killing_the_host_takes_its_service_and_workers_with_it(home: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmpdir"  # the stack's TMPDIR: what it leaves there is seen
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    platform = LocalPlatform(home, stacks_file(home, endpoint={"workers_min": 1}, staging={}))
    workers_dir = StackDir(home, "staging").workers_dir
    try:
        ensure_up(platform, "staging")
        host = platform.require_running("staging")["pid"]
        assert wait_until(lambda: any("goldgate.local.worker_process" in argv
                                      for argv in processes_naming(str(home)).values()), 60), \
            "the stack never started its minimum worker"
        stack_processes = processes_naming(str(home))
        assert any("service.local_server" in argv for argv in stack_processes.values())
        killed_workers = {d.name for d in workers_dir.iterdir()}
        assert killed_workers  # each worker's scratch space (its TMPDIR) lives in the stack's dir

        os.kill(host, signal.SIGKILL)

        wait_until(lambda: not processes_naming(str(home)), 15)
        assert processes_naming(str(home)) == {}
        # Nobody reaped those workers: the next `up` clears the scratch they left, and nothing went to TMPDIR.
        ensure_up(platform, "staging")
        assert killed_workers.isdisjoint(d.name for d in workers_dir.iterdir())
        assert list(scratch.iterdir()) == []
    finally:
        platform.down("staging")


def _fake_module(root: Path, dotted: str) -> None:
    """A module that only waits to be signalled, so a test can play a process with a real module's argv."""
    path = root.joinpath(*dotted.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.parents:
        if parent == root:
            break
        (parent / "__init__.py").touch()
    path.write_text("import time\nwhile True:\n    time.sleep(60)\n")


def _leftover(fakes: Path, argv: list[str], stack: str) -> subprocess.Popen[bytes]:
    # As a pre-fix host started them: its own session for a worker, the stack's env, no lifeline.
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(fakes), "STACK": stack}
    return subprocess.Popen([sys.executable, "-m", *argv], cwd=fakes, env=env, stdin=subprocess.DEVNULL,
                            start_new_session="goldgate.local.worker_process" in argv)


@pytest.mark.parametrize("command", ["down", "up"])
def test_down_and_up_stop_leftovers_of_a_dead_host_and_nothing_else(tmp_path: Path, home: Path,
                                                                    command: str) -> None:
    fakes = tmp_path / "fakes"
    for module in ("service.local_server", "goldgate.local.worker_process"):
        _fake_module(fakes, module)
    other_home = tmp_path / "other-home"
    platform = LocalPlatform(home, stacks_file(home, staging={}))
    procs: list[subprocess.Popen[bytes]] = []

    def service(h: Path, stack: str) -> list[str]:
        return ["service.local_server", "--config", str(h / "stacks" / stack / "service.json")]

    def worker(h: Path) -> list[str]:
        return ["goldgate.local.worker_process", "--snapshot", str(h / "images" / ("ab" * 32))]

    try:
        ours = [_leftover(fakes, service(home, "staging"), "staging"), _leftover(fakes, worker(home), "staging")]
        others = [_leftover(fakes, service(home, "prod"), "prod"), _leftover(fakes, worker(home), "prod"),
                  _leftover(fakes, service(other_home, "staging"), "staging"),
                  _leftover(fakes, worker(other_home), "staging")]
        procs = ours + others
        assert wait_until(lambda: all(argv_of(p.pid)[1:3] == ["-m", argv[0]] for p, argv in
                                      zip(procs, [service(home, "staging"), worker(home)] * 3)), 10)

        if command == "down":
            platform.down("staging")
        else:
            ensure_up(platform, "staging")

        assert wait_until(lambda: all(p.poll() is not None for p in ours), 15), \
            [p.pid for p in ours if p.poll() is None]
        assert all(p.poll() is None for p in others), "a process of another stack or home was signalled"
    finally:
        platform.down("staging")
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
