"""Review 20, start-up costs: the local processes end without the interpreter's teardown (lifeline.exit_now)
and a local worker imports the runpod SDK without running paramiko's import
(worker_process.import_runpod_sdk).

Each check runs in a fresh interpreter: what is under test is how a process ends, and what its imports did.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _python(code: str, *args: str, cwd: Path = REPO, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False, **kwargs)  # type: ignore[call-overload]


@pytest.mark.parametrize(("code", "status", "stderr"), [
    ("0", 0, ""), ("3", 3, ""), ("None", 0, ""), ("'a reason'", 1, "a reason\n"), ("-1", 255, ""),
])
def test_exit_now_gives_the_status_sys_exit_gives(code: str, status: int, stderr: str,
                                                  tmp_path: Path) -> None:
    """The status, the atexit handlers (run, newest first), and stdout's buffered text all as `sys.exit` has
    them."""
    marks = tmp_path / "atexit.txt"
    done = _python(f"""
        import atexit, sys
        from goldgate.local.lifeline import exit_now
        atexit.register(lambda: open({str(marks)!r}, "a").write("first registered\\n"))
        atexit.register(lambda: open({str(marks)!r}, "a").write("last registered\\n"))
        # Nothing is flushed before the exit:
        sys.stdout = open(sys.stdout.fileno(), "w", buffering=1 << 20, closefd=False)
        print("buffered output")
        exit_now({code})
        print("not reached")
    """)
    assert done.returncode == status
    assert done.stdout == "buffered output\n"
    assert done.stderr == stderr
    assert marks.read_text() == "last registered\nfirst registered\n"


def test_exit_now_waits_for_a_thread_that_is_no_daemon(tmp_path: Path) -> None:
    """A thread that still runs when the process is told to end finishes first, as under `sys.exit`."""
    finished = tmp_path / "finished.txt"
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            import os, threading
            from goldgate.local.lifeline import exit_now
            def work():
                os.read({read_fd}, 1)  # until the test says go, after it saw the exit begin
                open({str(finished)!r}, "w").write("done")
            threading.Thread(target=work).start()
            print("exiting", flush=True)
            exit_now(7)
        """)], cwd=REPO, stdout=subprocess.PIPE, text=True, pass_fds=(read_fd,))
        os.close(read_fd)
        assert proc.stdout is not None
        assert proc.stdout.readline() == "exiting\n"
        assert proc.poll() is None  # held by the thread
        os.write(write_fd, b"x")
        assert proc.wait(60) == 7
        proc.stdout.close()
    finally:
        os.close(write_fd)
    assert finished.read_text() == "done"


@pytest.mark.parametrize(("body", "status", "stderr"), [
    ("raise SystemExit(5)", 5, ""),
    ("import sys; sys.exit('refused: a reason')", 1, "refused: a reason\n"),
    ("print('served')", 0, ""),
])
def test_a_module_run_under_the_lifeline_keeps_its_exit_status(body: str, status: int, stderr: str,
                                                               tmp_path: Path) -> None:
    """`python -m goldgate.local.lifeline <module>` (how the stack host runs the service) ends with the
    module's own status and words."""
    (tmp_path / "pf_probe_module.py").write_text(body + "\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    done = subprocess.run([sys.executable, "-m", "goldgate.local.lifeline", "pf_probe_module"], cwd=REPO,
                          env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == status
    assert done.stderr == stderr
    assert done.stdout == ("served\n" if status == 0 else "")


def test_a_crash_under_the_lifeline_still_ends_with_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "pf_probe_crash.py").write_text("raise RuntimeError('boom')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    done = subprocess.run([sys.executable, "-m", "goldgate.local.lifeline", "pf_probe_crash"], cwd=REPO,
                          env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "RuntimeError: boom" in done.stderr


def test_the_sdk_imports_without_running_paramiko_which_still_works_once_used() -> None:
    """The worker's SDK import leaves paramiko (the SDK's `runpod ssh` CLI) unrun; the SDK's own modules that
    hold it get the real paramiko at their first use of it."""
    done = _python("""
        import sys
        from goldgate.local.worker_process import import_runpod_sdk
        import_runpod_sdk()
        import runpod
        from runpod.serverless.modules import rp_ping, rp_scale  # the serverless loop is there
        stand_in = sys.modules["paramiko"]
        print("ran at import:", "paramiko.transport" in sys.modules)
        from runpod.cli.groups.ssh import functions
        assert functions.paramiko is stand_in
        key_class = functions.paramiko.RSAKey  # the SDK's own use: `paramiko.RSAKey.generate(...)`
        import paramiko
        import paramiko.rsakey
        print("real:", key_class is paramiko.rsakey.RSAKey, type(paramiko) is type(sys),
              paramiko is not stand_in)
        print("stand-in now real:", stand_in.SSHClient is paramiko.SSHClient,
              stand_in.__file__ == paramiko.__file__)
        print("ran once used:", "paramiko.transport" in sys.modules)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ran at import: False", "real: True True True",
                                        "stand-in now real: True True", "ran once used: True"]


def test_a_paramiko_imported_before_the_sdk_is_left_as_it_is() -> None:
    done = _python("""
        import sys
        import paramiko
        from goldgate.local.worker_process import import_runpod_sdk
        import_runpod_sdk()
        print(sys.modules["paramiko"] is paramiko, type(paramiko) is type(sys))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]
