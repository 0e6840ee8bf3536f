"""`goldgate up` and `down` as an operator drives them from a terminal, with real processes: Ctrl-C of an `up`
that waits for its stack, an `up` run while a `down` is still stopping the stack."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from ci_policy import needs
from processes import processes_naming, wait_until
from stackfiles import stacks_file

from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

REPO = Path(__file__).resolve().parents[2]


def _hosts(home: Path) -> list[int]:
    return [pid for pid, argv in processes_naming(str(home)).items() if "goldgate.local.stackhost" in argv]


def test_ctrl_c_of_up_while_it_waits_stops_the_host_it_started(home: Path) -> None:
    d = StackDir(home, "prod")
    up = subprocess.Popen([sys.executable, "-m", "goldgate.cli", "up", "prod", "--home", str(home)], cwd=REPO,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    host = None
    try:
        assert wait_until(lambda: _hosts(home), 60), "`up` started no host"
        host = _hosts(home)[0]
        # The host stopped (SIGSTOP) while it starts: `up` is surely still waiting when the operator presses
        # Ctrl-C (a real host is as slow on a loaded machine).
        os.kill(host, signal.SIGSTOP)
        assert not d.state_file.exists(), "the host was ready before it could be held"
        up.send_signal(signal.SIGINT)  # what Ctrl-C sends to the terminal's foreground process group
        assert wait_until(lambda: _pending(host, signal.SIGTERM) or up.poll() is not None, 60), \
            "the interrupted `up` did not stop the host it started"
        with contextlib.suppress(ProcessLookupError):  # gone already: `up` may have had to kill it outright
            os.kill(host, signal.SIGCONT)  # let it go on: it takes the SIGTERM `up` sent
        _, err = up.communicate(timeout=60)
        assert up.returncode == 130, err
        assert "Traceback" not in err, err
        assert wait_until(lambda: not processes_naming(str(home)), 30), \
            f"the interrupted `up` left its host starting the stack: {processes_naming(str(home))}"
        assert not LocalPlatform(home).status("prod").running
        assert not d.state_file.exists()
    finally:
        if host is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(host, signal.SIGCONT)
        if up.poll() is None:
            up.kill()
            up.communicate()


def _pending(pid: int, sig: int) -> bool:
    """Whether `sig` waits to be delivered to `pid` (a stopped process keeps it pending)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    masks = [int(line.split()[1], 16) for line in status.splitlines() if line.startswith(("SigPnd:", "ShdPnd:"))]
    return any(mask & (1 << (sig - 1)) for mask in masks)


def test_up_while_down_is_stopping_the_stack_waits_for_it_and_brings_the_stack_up(home: Path) -> None:
    platform = LocalPlatform(home, stacks_file(home))
    said: list[str] = []
    first = platform.up("prod")
    service = json.loads(StackDir(home, "prod").state_file.read_text())["service_pid"]
    # The service stopped (SIGSTOP) holds the host's shutdown: `down` stays in progress, surely, until it goes on.
    os.kill(service, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(2) as pool:
            down = pool.submit(platform.down, "prod")
            assert wait_until(lambda: _pending(service, signal.SIGTERM) or down.done(), 60), \
                "down never asked the service to stop"
            assert not down.done()
            up = pool.submit(platform.up, "prod", said.append)
            # Either `up` answered at once (from the stack that is stopping) or it waits for the `down`.
            assert wait_until(lambda: up.done() or any("waiting for `goldgate down prod`" in s for s in said), 60)
            os.kill(service, signal.SIGCONT)
            down.result()
            status = up.result()
        assert status.running
        now = platform.status("prod")
        assert now.running, f"`up` said the stack was up ({said}), but `down` took it down after"
        assert now.api_url == status.api_url and now.api_url != first.api_url
        with httpx.Client(base_url=now.api_url, timeout=30,
                          headers={"Authorization": f"Bearer {platform.api_token('prod')}"}) as api:
            assert api.get("/api/workflows").status_code == 200
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(service, signal.SIGCONT)
        platform.down("prod")
    assert wait_until(lambda: not processes_naming(str(home)), 30), processes_naming(str(home))


# Put on the PYTHONPATH of an `up`: its stack host (only) waits, before it runs a line of its own, until the test
# opens the FIFO named by GOLDGATE_TEST_HOLD for reading. Python's start-up on a loaded machine is as slow.
_HOLD_HOST = """
import os, sys
if "goldgate.local.stackhost" in getattr(sys, "orig_argv", sys.argv):
    open(os.environ["GOLDGATE_TEST_HOLD"], "w").close()
"""


def test_down_run_before_the_starting_host_took_its_lock_stops_it(home: Path, tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    os.mkfifo(hold)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_HOLD_HOST)
    env = {**os.environ, "PYTHONPATH": str(site), "GOLDGATE_TEST_HOLD": str(hold)}
    up = subprocess.Popen([sys.executable, "-m", "goldgate.cli", "up", "prod", "--home", str(home)], cwd=REPO,
                          env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    released = None
    try:
        assert wait_until(lambda: _hosts(home), 60), "`up` started no host"
        assert StackDir(home, "prod").host_lock_pid() is None  # held before it could take its host lock
        down = subprocess.run([sys.executable, "-m", "goldgate.cli", "down", "prod", "--home", str(home)],
                              cwd=REPO, capture_output=True, text=True, check=False, timeout=120)
        assert down.returncode == 0 and "down: prod" in down.stdout, down
        released = os.open(hold, os.O_RDONLY | os.O_NONBLOCK)  # a host still there goes on from here
        _, err = up.communicate(timeout=120)
        assert up.returncode == 1 and "stopped before it was ready" in err, (up.returncode, err)
        assert wait_until(lambda: not processes_naming(str(home)), 30), \
            f"`down` said the stack was down but its host went on: {processes_naming(str(home))}"
        assert not LocalPlatform(home).status("prod").running
    finally:
        if up.poll() is None:
            up.kill()
            up.communicate()
        if released is not None:
            os.close(released)


_FORK_AND_NEVER_REAP = """
import os, sys
pid = os.fork()
if pid == 0:
    os._exit(0)
print(pid, flush=True)
sys.stdin.read()
"""


def test_a_host_that_exited_under_a_parent_that_never_reaps_it_counts_as_gone() -> None:
    """A host outlives the `up` that started it and is reparented; where its new parent never reaps (a container
    whose PID 1 is no init), its exit leaves a zombie, which `down` must take for a stopped host instead of
    waiting out the whole grace period for it (and then signalling its pid)."""
    from goldgate.local.platform import _alive

    parent = subprocess.Popen([sys.executable, "-c", _FORK_AND_NEVER_REAP], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        zombie = int(parent.stdout.readline())
        assert wait_until(lambda: Path(f"/proc/{zombie}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", 30)
        assert not _alive(zombie)
        assert _alive(parent.pid)
    finally:
        parent.communicate("")
