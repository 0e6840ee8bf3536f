"""Two drills of one stack at once (the scheduled drill and an operator's): each records its result whole."""

from __future__ import annotations

import json
import threading

from goldgate.ops.dr import DrillResult, latest_drill, latest_path, record


def _drill(writer: int, n: int) -> DrillResult:
    # A record of a realistic size (a failed drill's notes and verified lines): writing it is not instant
    return DrillResult(stack="staging", target="local", passed=True, started_at=f"2026-11-29T21:00:0{writer}.{n:03d}Z",
                       finished_at="2026-11-29T21:00:09.000Z", verified=[f"line {i} " + "v" * 200 for i in range(40)])


def test_drills_recording_at_the_same_time_never_crash_nor_leave_a_damaged_latest_record(tmp_path):
    home = tmp_path / "home"
    failures: list[str] = []

    def drills(writer: int) -> None:
        try:
            for n in range(150):
                record(home, _drill(writer, n))
        except OSError as exc:  # the old shared temporary file: FileNotFoundError once the other renamed it
            failures.append(repr(exc))

    writers = [threading.Thread(target=drills, args=(w,)) for w in range(4)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    assert failures == []
    # the checklist's evidence is one whole record, one of the drills'
    recorded = latest_drill(home, "staging", "local")
    assert recorded["passed"] is True and len(recorded["verified"]) == 40
    json.loads(latest_path(home, "staging", "local").read_text())
    # each drill kept its dated copy, and no temporary file is left behind
    names = sorted(p.name for p in (home / "drills" / "staging").iterdir())
    assert len(names) == 4 * 150 + 1 and all(name.endswith("-local.json") for name in names[:-1])
