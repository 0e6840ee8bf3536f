"""Something other than a file where the ledger or the release lock belongs (a named pipe left by a debugging session
or a bad restore, a socket): before, a pipe at `ledger.jsonl` hung `goldgate history` and every command that reads
the ledger for ever (an append died of a traceback), and a pipe at `release.lock` made `goldgate rollback` fail with
a bare "Invalid argument" that named no file, leaking the lock's file descriptor. Now each is refused at once, naming
the path."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from release_support import invoke

from goldgate.errors import StateError
from goldgate.release.ledger import Ledger
from goldgate.release.lock import ReleaseLock

REPO = Path(__file__).resolve().parents[2]
A = "local/worker@sha256:" + "a" * 64
# Run from the checkout under test (cwd first on sys.path), in a child: a hang there is a failed test, not a stuck run.
GOLDGATE = "import sys; from goldgate.cli import main; sys.exit(main(sys.argv[1:]))"
APPEND = ("import sys; from pathlib import Path; from goldgate.release.ledger import Ledger; "
          f"Ledger(Path(sys.argv[1])).append('build', image='{A}', release_id='r1', trigger='test')")


def _child(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOLDGATE_HOME", "GOLDGATE_LEDGER_KEY")}
    return subprocess.run([sys.executable, "-c", *argv], cwd=REPO, env=env, capture_output=True, text=True,
                          check=False, timeout=120)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_history_refuses_a_named_pipe_at_the_ledger_naming_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "ledger.jsonl")
    proc = _child(GOLDGATE, "history", "--home", str(tmp_path))
    assert proc.returncode == 1
    assert f"{tmp_path / 'ledger.jsonl'} is a named pipe (FIFO), not a regular file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_append_refuses_a_named_pipe_at_the_ledger(tmp_path: Path) -> None:
    # Opened read-write, a pipe does not block the open: the append died of an "is not seekable" traceback.
    os.mkfifo(tmp_path / "ledger.jsonl")
    proc = _child(APPEND, str(tmp_path))
    assert proc.returncode == 1
    assert f"StateError: {tmp_path / 'ledger.jsonl'} is a named pipe (FIFO)" in proc.stderr


def test_a_socket_at_the_ledger_is_named_as_one(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "ledger.jsonl"))
        with pytest.raises(StateError, match="ledger.jsonl is a socket, not a regular file"):
            Ledger(tmp_path, key=None).entries()


def test_a_named_pipe_at_the_release_lock_is_refused_by_name_and_leaks_no_descriptor(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "release.lock")
    before = _open_fds()
    refused = r"release\.lock is a named pipe \(FIFO\), not a regular file: goldgate keeps the release lock there"
    with pytest.raises(StateError, match=refused), ReleaseLock(tmp_path, "rollback prod"):
        pass
    assert _open_fds() == before


def test_rollback_names_the_lock_that_is_not_a_file(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "release.lock")
    code, _, err = invoke(capsys, "rollback", "--home", str(tmp_path))
    assert code == 1
    assert str(tmp_path / "release.lock") in err and "named pipe" in err
    assert "Invalid argument" not in err


def test_a_held_lock_refused_to_another_holder_leaks_no_descriptor(tmp_path: Path) -> None:
    with ReleaseLock(tmp_path, "promote staging -> prod"):
        before = _open_fds()
        for _ in range(3):
            with pytest.raises(StateError, match="another promotion or rollback is running"):
                ReleaseLock(tmp_path, "rollback prod").__enter__()
        assert _open_fds() == before
    with ReleaseLock(tmp_path, "rollback prod"):   # and it is free again once its holder left
        pass


def test_a_directory_in_place_of_the_ledger_is_refused_by_name_when_appending(tmp_path: Path) -> None:
    (tmp_path / "ledger.jsonl").mkdir()
    with pytest.raises(StateError) as refused:
        Ledger(tmp_path).append("build", image="local/worker@sha256:" + "a" * 64)
    assert f"{tmp_path / 'ledger.jsonl'} is a directory, not a regular file" in str(refused.value)
    assert "restore the ledger from its backup" in str(refused.value)
