"""Review 30 (env30): the `goldgate` command on a machine unlike the developers'. Ctrl-C in its first tenth of a second
(while Python loads the command line) printed a traceback of import lines; `--help` or `--version` into a full disk
exited 0 with nothing written (or 120 with "Exception ignored"); under LC_ALL=C or POSIX, where Python turns its
UTF-8 mode on by itself, goldgate wrote UTF-8 (its `…`, a non-ASCII path) to a reader whose locale says ASCII."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ci_policy import needs

ROOT = Path(__file__).resolve().parents[1]

# The console script's own lines (`from goldgate.cli import main`), with a Ctrl-C delivered as Python imports the
# module named in argv[1]: no timing, the interrupt comes at that import every run.
CTRL_C_AT_IMPORT = """
import os, signal, sys
module = sys.argv[1]

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == module:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = ["goldgate", "status"]
from goldgate.cli import main
sys.exit(main())
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LC_", "LANG", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONUNBUFFERED"))}
    return {**env, "GOLDGATE_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT), **extra}


@pytest.mark.parametrize("module", ["goldgate.commands.output", "goldgate.release.ledger", "goldgate.commands.ops_args"])
def test_ctrl_c_while_the_command_line_loads_is_one_line_and_130_not_a_traceback(tmp_path: Path, module: str) -> None:
    # output and the ledger: imported by goldgate.cli itself; ops_args: as the parser is built
    run = subprocess.run([sys.executable, "-c", CTRL_C_AT_IMPORT, module], env=_env(tmp_path), capture_output=True,
                         text=True, timeout=60, check=False)
    assert "Traceback" not in run.stderr, run.stderr
    assert run.stderr.strip().splitlines() == ["goldgate: interrupted"], run.stderr
    assert run.returncode == 130


def _goldgate(tmp_path: Path, argv: list[str], stdout: object = subprocess.PIPE,
              **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "goldgate", *argv], env=_env(tmp_path, **env), stdout=stdout,
                          stderr=subprocess.PIPE, timeout=60, check=False)


@needs(Path("/dev/full").exists(), "/dev/full (a device every write to fails with ENOSPC)")
@pytest.mark.parametrize("argv", [["status", "--help"], ["--version"]])
@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_help_and_version_into_a_full_disk_fail_with_one_line_as_any_output_does(tmp_path: Path, argv: list[str],
                                                                                 unbuffered: str) -> None:
    with open("/dev/full", "wb") as full:
        run = _goldgate(tmp_path, argv, stdout=full, **({"PYTHONUNBUFFERED": unbuffered} if unbuffered else {}))
    err = run.stderr.decode()
    assert err.splitlines() == [("goldgate: error: cannot write the output to stdout: No space left on device; "
                                 "check where it is redirected (a full disk?)")], err
    assert run.returncode == 1


def test_help_to_a_reader_that_left_is_quiet_and_0(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.close(read)  # `goldgate status --help | true`: the reader is gone before the help is written
    try:
        run = _goldgate(tmp_path, ["status", "--help"], stdout=write)
    finally:
        os.close(write)
    assert run.stderr.decode() == ""
    assert run.returncode == 0


@pytest.mark.parametrize("locale", [{"LC_ALL": "C"}, {"LC_ALL": "POSIX"}, {"LANG": "C"}])
def test_under_the_c_locale_output_errors_and_progress_are_ascii(tmp_path: Path, locale: dict[str, str]) -> None:
    home = tmp_path / "héme"
    # stdout: a path read from the environment; stderr: goldgate's own progress mark
    down = _goldgate(tmp_path, ["down", "all"], GOLDGATE_HOME=str(home), **locale)
    status = _goldgate(tmp_path, ["status"], GOLDGATE_HOME=str(home), **locale)
    assert down.returncode == status.returncode == 0, (down.stderr, status.stderr)
    assert down.stdout.decode("ascii") == f"down: nothing to stop: no state dir at {tmp_path}/h\\xe9me\n"
    assert status.stderr.decode("ascii").startswith(f"... no state dir at {tmp_path}/h\\xe9me: "), status.stderr
    file = tmp_path / "fïle"
    file.touch()
    failed = _goldgate(tmp_path, ["status"], GOLDGATE_HOME=str(file), **locale)  # an error line
    assert failed.returncode == 1
    assert failed.stderr.decode("ascii").startswith(f"goldgate: error: GOLDGATE_HOME {tmp_path}/f\\xefle: Not a "
                                                    "directory"), failed.stderr
    usage = _goldgate(tmp_path, ["metrics", "staging", "--since", "é"], **locale)  # argparse's own line
    assert usage.returncode == 2
    assert usage.stderr.decode("ascii").splitlines()[-1].endswith("got '\\xe9'"), usage.stderr
    # UTF-8 asked for by name is kept
    asked = _goldgate(tmp_path, ["down", "all"], PYTHONUTF8="1", GOLDGATE_HOME=str(home), **locale)
    assert asked.stdout.decode("utf-8") == f"down: nothing to stop: no state dir at {home}\n"


def test_a_not_ready_checklist_whose_reader_left_still_exits_1(tmp_path: Path) -> None:
    # `goldgate checklist staging 2>&1 | head -3` under pipefail: head leaves on the progress lines, before the
    # checklist is written. The reader's leaving is no failure, but neither does it turn NOT READY into a pass.
    read, write = os.pipe()
    os.close(read)
    try:
        run = _goldgate(tmp_path, ["checklist", "staging"], stdout=write)
    finally:
        os.close(write)
    assert "Traceback" not in run.stderr.decode(), run.stderr
    assert "goldgate: error" not in run.stderr.decode(), run.stderr
    assert run.returncode == 1  # the home has no stack: NOT READY, as `goldgate checklist staging` says and exits
