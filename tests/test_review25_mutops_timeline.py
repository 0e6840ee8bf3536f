"""scripts/test_timeline.py's report, in process: the files are those that ended last, with the time their tests
took, and a timeline that is empty or holds a record without its fields is refused in a line, not a traceback."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "test_timeline.py"


def _main():
    spec = importlib.util.spec_from_file_location("test_timeline_script_r25", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _timeline(tmp_path: Path, records: list[object]) -> Path:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_the_files_listed_are_those_that_ended_last_with_their_time_in_tests(tmp_path, capsys) -> None:
    path = _timeline(tmp_path, [
        {"worker": "gw0", "file": "tests/first.py", "start": 100.0, "end": 101.0},
        {"worker": "gw0", "file": "tests/first.py", "start": 150.0, "end": 190.0},  # started first, ended last
        {"worker": "gw1", "file": "tests/second.py", "start": 110.0, "end": 160.0},
        {"worker": "gw1", "file": "tests/third.py", "start": 120.0, "end": 130.0},
    ])
    assert _main()([str(path), "--last", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "tests 4, span 90 s; busy per worker: gw0 41 s, gw1 60 s"
    assert out[2:] == ["    gw1      10      60    50.0  tests/second.py",
                       "    gw0       0      90    41.0  tests/first.py"]


def test_an_empty_timeline_is_refused_in_a_line(tmp_path, capsys) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("\n")
    assert _main()([str(path)]) == 1
    assert capsys.readouterr().err == f"test_timeline: {path} holds no test\n"


@pytest.mark.parametrize("record", [{"worker": "gw0", "file": "a.py", "start": 1},
                                    {"worker": "gw0", "file": "a.py", "start": "1", "end": 2}])
def test_a_record_without_its_fields_is_refused_by_its_line(tmp_path, capsys, record) -> None:
    path = _timeline(tmp_path, [{"worker": "gw0", "file": "a.py", "start": 1, "end": 2}, record])
    assert _main()([str(path)]) == 1
    assert capsys.readouterr().err == f"test_timeline: line 2 of {path} is no test record (worker, file, start, end)\n"
