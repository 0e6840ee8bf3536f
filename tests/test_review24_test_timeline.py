"""scripts/test_timeline.py names the test files that ended last, from the lines GG_TEST_TIMELINE makes the suite's
conftest write: one real pytest run with it set, then the script over its file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_timeline_written_by_a_run_names_its_files_in_the_order_they_ended(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tests / "test_first.py").write_text("def test_a():\n    pass\n")
    (tests / "test_second.py").write_text("import time\n\ndef test_b():\n    time.sleep(0.05)\n")
    timeline = tmp_path / "timeline.jsonl"
    # Not an xdist worker's: the suite's own worker name must not reach the run below.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}, "GG_TEST_TIMELINE": str(timeline)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", "-o",
                          "addopts=", str(tests / "test_first.py"), str(tests / "test_second.py")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [json.loads(line) for line in timeline.read_text().splitlines()]
    assert [(t["worker"], t["file"]) for t in lines] == [("main", "tests/test_first.py"),
                                                        ("main", "tests/test_second.py")]
    assert all(t["end"] >= t["start"] for t in lines)

    shown = subprocess.run([sys.executable, str(ROOT / "scripts" / "test_timeline.py"), str(timeline)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout.splitlines()
    assert out[0].startswith("tests 2, span ") and "main" in out[0]
    assert [line.split()[-1] for line in out[2:]] == ["tests/test_first.py", "tests/test_second.py"]


def test_the_script_refuses_a_file_that_is_not_a_timeline(tmp_path: Path) -> None:
    bad = tmp_path / "t.jsonl"
    bad.write_text("not json\n")
    shown = subprocess.run([sys.executable, str(ROOT / "scripts" / "test_timeline.py"), str(bad)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 1 and shown.stderr.startswith(f"test_timeline: cannot read {bad}"), shown.stderr


def test_the_script_refuses_a_line_that_is_no_test_record(tmp_path: Path) -> None:
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"worker": "gw0", "file": "a.py", "start": 1, "end": 2}\n[1, 2]\n')
    shown = subprocess.run([sys.executable, str(ROOT / "scripts" / "test_timeline.py"), str(bad)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 1, shown.stderr
    assert shown.stderr == f"test_timeline: line 2 of {bad} is no test record (worker, file, start, end)\n"
