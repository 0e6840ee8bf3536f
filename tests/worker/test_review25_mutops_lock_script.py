"""scripts/lock_worker_requirements.py's answers to what pip-compile locked, offline: a stand-in `piptools`
package (its `python -m piptools compile` writes the lock the test gives it) takes the index's place. The
earlier tests reach `read` and `write` only; these hold `--check`'s exit status and the refusals of a lock that
needs a pin the file lacks, or that locked another version than the file pins."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest
from worker_harness import REPO

SCRIPT = REPO / "scripts" / "lock_worker_requirements.py"
A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
LOCKED = f"six==1.17.0 \\\n    --hash={A} \\\n    --hash={B}\n"


@pytest.fixture
def lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The script as a module, with a stand-in pip-tools whose lock is tmp_path/lock.txt's text."""
    fake = tmp_path / "fake" / "piptools"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(textwrap.dedent(f"""
        import sys
        out = sys.argv[sys.argv.index("--output-file") + 1]
        open(out, "w").write(open({str(tmp_path / "lock.txt")!r}).read())
    """))
    monkeypatch.syspath_prepend(str(fake.parent))  # the script's look for pip-tools
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))  # and the pip-compile it runs
    spec = importlib.util.spec_from_file_location("lock_worker_requirements_r25", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclass looks its module up by name
    spec.loader.exec_module(module)
    return module


def _run(lock, tmp_path: Path, requirements: str, locked: str, *args: str) -> tuple[int, Path]:
    (tmp_path / "lock.txt").write_text(locked)
    path = tmp_path / "requirements.txt"
    path.write_text(requirements)
    return lock.main(["--requirements", str(path), *args]), path


def test_check_passes_a_file_whose_hashes_the_index_lists_and_fails_one_it_does_not(lock, tmp_path, capsys):
    status, _ = _run(lock, tmp_path, "# why\n" + LOCKED, LOCKED, "--check")
    assert status == 0, capsys.readouterr()
    assert "every pin carries the hashes the index lists for it" in capsys.readouterr().out
    stale = "# why\n" + LOCKED.replace(B, "sha256:" + "c" * 64)
    status, path = _run(lock, tmp_path, stale, LOCKED, "--check")
    assert status == 1
    assert f"+    --hash={B}" in capsys.readouterr().out
    assert path.read_text() == stale  # --check changes nothing


def test_a_dependency_the_pins_lack_is_named_not_a_traceback(lock, tmp_path, capsys):
    status, path = _run(lock, tmp_path, "six==1.17.0\n", LOCKED + f"idna==3.10 \\\n    --hash={A}\n")
    err = capsys.readouterr().err
    assert status == 2, err
    assert "the pins need these too; pin each (with a comment on who needs it) and run again: idna==3.10" in err
    assert "Traceback" not in err
    assert path.read_text() == "six==1.17.0\n"  # left as it was


def test_a_lock_of_another_version_than_the_pin_is_refused(lock, tmp_path, capsys):
    status, path = _run(lock, tmp_path, "six==1.16.0\n", LOCKED)
    assert status == 2
    assert "pip-compile locked six==1.17.0 with 2 hashes, not 1.16.0 with hashes" in capsys.readouterr().err
    assert path.read_text() == "six==1.16.0\n"


def test_a_pin_written_with_underscores_or_capitals_matches_the_name_pip_compile_writes(lock, tmp_path, capsys):
    locked = f"typing-extensions==4.12.2 \\\n    --hash={A}\n"  # pip-compile writes PEP 503 names
    status, path = _run(lock, tmp_path, "# why\nTyping_Extensions==4.12.2\n", locked)
    assert status == 0, capsys.readouterr().err
    assert path.read_text() == f"# why\nTyping_Extensions==4.12.2 \\\n    --hash={A}\n"  # the file's own spelling
