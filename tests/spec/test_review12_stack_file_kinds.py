"""A stack file that is not a regular file, or holds a character YAML refuses: one error naming it, never a wait.
A named pipe in place of stacks/local.yaml or a Pulumi stack file blocked every command that read it forever (no
writer ever comes); a NUL byte or escape character was named by its offset "in <unicode string>"."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from ci_policy import require

from goldgate import spec as specs
from goldgate.errors import SpecError

REPO = Path(__file__).resolve().parents[2]


def load_in_thread(path: Path) -> BaseException | None:
    """`load_local` of `path`, failing the test if it waits on the file instead of answering."""
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            specs.load_local("staging", path)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 -- handed to the test's thread
            outcome.append(exc)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    loader.join(10)
    if loader.is_alive():  # stuck opening the pipe: let it go (a writer that closes at once), then fail
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        loader.join(10)
        pytest.fail(f"load_local waited on {path}")
    return outcome[0]


def test_a_named_pipe_in_place_of_the_stack_file_is_named_not_waited_on(tmp_path: Path) -> None:
    require(hasattr(os, "mkfifo"), "named pipes (os.mkfifo)")
    fifo = tmp_path / "local.yaml"
    os.mkfifo(fifo)
    error = load_in_thread(fifo)
    assert isinstance(error, SpecError), error
    assert str(error) == (f"stack file {fifo} is a named pipe (FIFO), not a file; name the stack file itself, saved "
                          "as a file")


def test_a_device_in_place_of_the_stack_file_is_named_as_one(tmp_path: Path) -> None:
    require(Path("/dev/zero").exists(), "/dev/zero")
    link = tmp_path / "local.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(SpecError, match=r"is a device, not a file"):
        specs.load_local("staging", link)


def test_a_directory_in_place_of_the_stack_file_is_named_as_one(tmp_path: Path) -> None:
    (tmp_path / "local.yaml").mkdir()
    with pytest.raises(SpecError, match=r"local\.yaml is a directory, not a file"):
        specs.load_local("staging", tmp_path / "local.yaml")


def test_a_regular_stack_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "local.yaml"
    path.write_bytes(specs.LOCAL_STACKS_FILE.read_bytes())
    assert specs.load_local("staging", path).name == "staging"


@pytest.mark.parametrize(("char", "code"), [("\x00", "#x0000"), ("\x1b", "#x001b")])
def test_a_character_yaml_refuses_is_named_at_its_line_and_column(tmp_path: Path, char: str, code: str) -> None:
    text = specs.LOCAL_STACKS_FILE.read_text()
    line_number, line = next((n, ln) for n, ln in enumerate(text.splitlines(), 1) if "workflow_version" in ln)
    column = line.index("2026") + 1
    path = tmp_path / "local.yaml"
    path.write_text(text.replace(line, line.replace("2026", f"{char}2026"), 1))
    with pytest.raises(SpecError) as err:
        specs.load_local("staging", path)
    assert str(err.value) == (f"stack file {path} is not valid YAML: unacceptable character {code} at line "
                              f"{line_number}, column {column} (a control character, which YAML does not allow); "
                              "remove it")


def test_a_cloud_command_with_a_pipe_for_its_stack_file_ends_with_one_line(tmp_path: Path) -> None:
    # `goldgate metrics --target cloud --stacks-dir D` reads D/Pulumi.staging.yaml before any credential.
    require(hasattr(os, "mkfifo"), "named pipes (os.mkfifo)")
    fifo = tmp_path / "Pulumi.staging.yaml"
    os.mkfifo(fifo)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDGATE_")}
    try:
        proc = subprocess.run([sys.executable, "-m", "goldgate.cli", "metrics", "staging", "--target", "cloud",
                               "--stacks-dir", str(tmp_path), "--home", str(tmp_path / "home")],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("goldgate metrics --target cloud waited on a named pipe for its stack file")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [(f"goldgate: error: stack file {fifo} is a named pipe (FIFO), not a file; "
                                         "name the stack file itself, saved as a file")]
