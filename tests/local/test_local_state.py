"""The local target's state home in odd shapes: stale or hand-edited state files, truncated secrets,
and image snapshots whose content no longer matches their digest. No stack is started here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.errors import StateError
from goldgate.local import image_store
from goldgate.local.image_store import ImageStoreError
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import SECRET_NAMES, StackDir, write_json_atomic
from goldgate.migrations import apply_sqlite
from goldgate.ops.backup import take_backup


@pytest.fixture
def platform(tmp_path: Path) -> LocalPlatform:
    return LocalPlatform(tmp_path / "home", stacks_file(tmp_path))


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen]:
    """A process that is not a stack host (as when the OS hands a dead host's pid to something else)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def _ready_state(d: StackDir, pid: object) -> None:
    d.ensure()
    write_json_atomic(d.state_file, {"status": "ready", "pid": pid, "generation": 0,
                                     "api_url": "http://127.0.0.1:9", "runpod_api_base": "http://127.0.0.1:9/v2",
                                     "runpod_endpoint_base": "http://127.0.0.1:9/v2", "endpoint_id": "abc",
                                     "image": None})


def test_a_stale_state_whose_pid_now_belongs_to_another_process_is_not_the_stack(platform, bystander) -> None:
    d = StackDir(platform.home, "staging")
    _ready_state(d, bystander.pid)
    assert platform.status("staging").running is False
    with pytest.raises(StateError, match="not up"):
        platform.require_running("staging")
    platform.down("staging")
    assert bystander.poll() is None, "goldgate down signalled a process that is not the stack's host"
    assert not d.state_file.exists()


@pytest.mark.parametrize("pid", ["4242", -1, True, 1.5], ids=["string", "negative", "bool", "float"])
def test_a_hand_edited_pid_is_not_a_running_stack(platform, pid: object) -> None:
    d = StackDir(platform.home, "staging")
    _ready_state(d, pid)
    assert platform.status("staging").running is False


def test_down_with_a_hand_edited_pid_only_removes_the_state(platform) -> None:
    d = StackDir(platform.home, "staging")
    _ready_state(d, "4242")
    platform.down("staging")
    assert not d.state_file.exists()


@pytest.mark.parametrize("content", ["", "\n"], ids=["empty", "newline"])
def test_a_truncated_secret_is_regenerated_not_used_empty(tmp_path: Path, content: str) -> None:
    d = StackDir(tmp_path, "staging")
    d.ensure()
    kept = d.secret("api_token")
    d.secret_file("runpod_api_key").write_text(content)
    with pytest.raises(StateError, match="runpod_api_key.*empty"):
        d.secret("runpod_api_key")
    d.ensure()
    assert len(d.secret("runpod_api_key")) == 64
    assert d.secret("api_token") == kept  # a good secret is never replaced
    assert {oct(d.secret_file(n).stat().st_mode & 0o777) for n in SECRET_NAMES} == {"0o600"}


def _tampered_snapshot(home: Path) -> tuple[str, Path]:
    ref = image_store.build_local_image(WORKER_SOURCE, home)
    handler = image_store.resolve(ref, home) / "worker" / "handler.py"
    handler.write_text(handler.read_text() + "\nraise SystemExit('edited after the build')\n")
    return ref, handler


def test_a_snapshot_edited_after_its_build_is_refused_by_its_digest(tmp_path: Path) -> None:
    ref, _ = _tampered_snapshot(tmp_path)
    with pytest.raises(ImageStoreError, match="does not match"):
        image_store.resolve(ref, tmp_path)


def test_rebuilding_replaces_a_snapshot_that_no_longer_matches_its_digest(tmp_path: Path) -> None:
    ref, handler = _tampered_snapshot(tmp_path)
    assert image_store.build_local_image(WORKER_SOURCE, tmp_path) == ref
    assert handler.read_text() == (WORKER_SOURCE / "handler.py").read_text()
    assert image_store.resolve(ref, tmp_path) == handler.parents[1]


def test_a_snapshot_missing_a_file_is_refused_by_its_digest(tmp_path: Path) -> None:
    ref = image_store.build_local_image(WORKER_SOURCE, tmp_path)
    workflows = image_store.resolve(ref, tmp_path) / "worker" / "workflows"
    shutil.rmtree(workflows)
    with pytest.raises(ImageStoreError, match="does not match"):
        image_store.resolve(ref, tmp_path)


@pytest.mark.parametrize("damage", ["removed", "cut short"])
def test_rebuilding_an_image_whose_baked_checkpoint_went_missing_bakes_it_again(tmp_path: Path, capsys,
                                                                                 damage: str) -> None:
    # The runbook's "No checkpoint models appear to be available", step 4: rebuild with the models baked in.
    source = tmp_path / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    home = ["--home", str(tmp_path / "home")]
    assert main(["build", "--context", str(source), *home]) == 0
    ref = capsys.readouterr().out.strip().splitlines()[-1]
    checkpoint = image_store.resolve(ref, tmp_path / "home") / "models" / "checkpoints" / "sd_xl_base_1.0.safetensors"
    if damage == "removed":
        checkpoint.unlink()
    else:
        checkpoint.write_bytes(b"")
    assert main(["doctor", "--image", ref, *home]) == 1
    assert "sd_xl_base_1.0.safetensors" in capsys.readouterr().out
    assert main(["build", "--context", str(source), *home]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == ref
    assert main(["doctor", "--image", ref, *home]) == 0


_HOLD_LOCK = ("import fcntl, os, sys, time\n"
              "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
              "fcntl.flock(fd, fcntl.LOCK_EX)\n"
              "os.write(fd, str(os.getpid()).encode())\n"
              "print('locked', flush=True)\n"
              "time.sleep(120)\n")


@pytest.fixture
def starting_host(platform) -> Iterator[subprocess.Popen]:
    """A stand-in for a stack host that holds the stack's host lock but is not ready yet (as while another
    `goldgate up` is starting it); its command line names the stack and home as a real host's does."""
    d = StackDir(platform.home, "staging")
    d.ensure()
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(d.lock_file), "goldgate.local.stackhost",
                             "--stack", "staging", "--home", str(platform.home)],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


def test_up_while_the_stack_is_still_starting_refuses_instead_of_starting_a_second_host(platform,
                                                                                        starting_host) -> None:
    try:
        with pytest.raises(StateError, match="already starting"):
            platform.up("staging", timeout_s=60)
    finally:
        platform.down("staging")
    assert starting_host.wait(30) is not None  # down stops a host that is still starting


def test_restore_while_the_stack_is_still_starting_is_refused_and_replaces_nothing(platform, starting_host,
                                                                                   tmp_path, capsys) -> None:
    # A host that is starting migrates and then serves the database it opened: a restore under it would be
    # served stale, or lost when the host writes.
    source = tmp_path / "source.sqlite"
    apply_sqlite(source)
    backup, _ = take_backup(source, tmp_path / "backups", "staging")  # a good backup of staging
    db = platform.db_path("staging")
    db.write_bytes(b"the stack's database")
    assert main(["dr-restore", "staging", "--backup", str(backup), "--home", str(platform.home)]) == 1
    assert "stack staging is running (or starting)" in capsys.readouterr().err
    assert db.read_bytes() == b"the stack's database"


def test_a_second_host_process_for_a_stack_exits_without_touching_its_state(platform, starting_host,
                                                                           tmp_path) -> None:
    d = StackDir(platform.home, "staging")
    second = subprocess.Popen([sys.executable, "-m", "goldgate.local.stackhost", "--stack", "staging",
                               "--home", str(platform.home), "--stacks-file", str(platform.stacks_file)],
                              stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        _, err = second.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        second.terminate()
        second.communicate(timeout=60)
        raise AssertionError("a second host for the same stack kept running") from None
    assert second.returncode == 2
    assert f"pid {starting_host.pid}" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not d.state_file.exists()
