"""The test policy itself: a component a machine lacks skips the test here, and fails it under CI=true, whether
asked for with `require` in the test or with the `needs` mark on the test or its module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

PROBE = '''
from ci_policy import needs, require

pytestmark = needs({module_has}, "a module-wide component")


@needs(False, "a marked component")
def test_marked():
    pass


def test_required():
    require(False, "a required component")


def test_present():
    pass
'''


@pytest.mark.parametrize("ci", ["", "true"])
def test_a_missing_component_skips_here_and_fails_under_ci(tmp_path: Path, ci: str) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE.format(module_has=True))
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(TESTS)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-rA",
                          str(probe)], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    outcome = {name: verdict for verdict, name in (line.split(" ", 1) for line in run.stdout.splitlines()
                                                   if line.startswith(("PASSED ", "FAILED ", "ERROR ", "SKIPPED ")))
               for name in [name.split("::")[-1].split(" ")[0]]}
    if ci:
        # a mark fails the test at its setup (pytest says ERROR), `require` in its body (FAILED): both fail the run
        assert run.returncode == 1, run.stdout
        assert outcome == {"test_marked": "ERROR", "test_required": "FAILED", "test_present": "PASSED"}, run.stdout
    else:
        assert run.returncode == 0, run.stdout
        assert "2 skipped" in run.stdout and "1 passed" in run.stdout, run.stdout


def test_no_test_skips_for_a_missing_component_past_the_policy() -> None:
    # A bare skipif mark or importorskip skips under CI=true too, where the component must be there.
    raw = [f"{path.relative_to(TESTS)}:{n}" for path in sorted(TESTS.rglob("*.py")) if path.name != "ci_policy.py"
           and path != Path(__file__).resolve()
           for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
           if "pytest.mark.skipif(" in line or "importorskip(" in line]
    assert raw == [], "use ci_policy.needs or ci_policy.require instead"
