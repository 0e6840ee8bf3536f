"""scripts/lock_worker_requirements.py, the one way requirements.txt's hashes are written, offline: given
the hashes the index lists, it rewrites only the hash lines, so a run on an unchanged index leaves the file as
it is (the comments and versions are the file's own); run with a Python that lacks pip-tools, it says how to
get it.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from worker_harness import REPO, WORKER_DIR

SCRIPT = REPO / "scripts" / "lock_worker_requirements.py"
REQUIREMENTS = WORKER_DIR / "requirements.txt"


def _script():
    spec = importlib.util.spec_from_file_location("lock_worker_requirements", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # its dataclass looks its module up by name
    spec.loader.exec_module(module)
    return module


def test_relocking_with_the_hashes_the_file_holds_changes_no_byte():
    lock = _script()
    text = REQUIREMENTS.read_text()
    entries = lock.read(text)
    pins = [entry for entry in entries if isinstance(entry, lock.Pin)]
    assert {pin.key for pin in pins} >= {"runpod", "boto3", "pyyaml"}
    # The hashes as the index gave them when the file was written (read back from the file itself).
    hashes: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if match := lock.PIN.fullmatch(line):
            current = lock.Pin(match[1], match[2]).key
            hashes[current] = []
        elif match := lock.HASH.fullmatch(line):
            hashes[current].append(match[1])
    assert all(hashes[pin.key] for pin in pins)
    assert lock.write(entries, hashes) == text


def test_a_pin_written_without_hashes_gets_them_under_it_and_keeps_its_comments():
    lock = _script()
    entries = lock.read("# why this pin\nsix==1.17.0\n")
    out = lock.write(entries, {"six": ["sha256:" + "a" * 64, "sha256:" + "b" * 64]})
    assert out.splitlines() == ["# why this pin", "six==1.17.0 \\", f"    --hash=sha256:{'a' * 64} \\",
                                f"    --hash=sha256:{'b' * 64}"]


def test_run_without_pip_tools_the_script_says_how_to_get_it():
    if importlib.util.find_spec("piptools") is not None:
        pytest.skip("this venv has pip-tools: the script would ask the index")
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert "pip-tools is not installed" in done.stderr and "pip install pip-tools==" in done.stderr
    assert done.stdout == ""


def test_an_unreadable_file_or_a_pin_left_without_hashes_is_refused_naming_it(tmp_path):
    gone = tmp_path / "requirements.txt"
    done = subprocess.run([sys.executable, str(SCRIPT), "--requirements", str(gone)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2 and "cannot read it" in done.stderr and "Traceback" not in done.stderr
    lock = _script()
    entries = lock.read("runpod==1.12.0\nboto3==1.44.8\n")
    with pytest.raises(lock.LockFailed, match=r"no hashes for boto3==1\.44\.8"):
        lock.write(entries, {"runpod": ["sha256:" + "0" * 64]})
