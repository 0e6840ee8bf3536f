"""Review 29 (mut): what `goldgate status` says of a local stack whose host a signal stopped (its "stopped" record).
Jobs left with no RunPod id recorded are jobs left in flight too: status counts them and points to `goldgate stuck`,
never "no job was in flight"; a count that is no count (a hand-edited record) counts as none."""

from __future__ import annotations

import json
from pathlib import Path

from stackfiles import stacks_file

from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

DEAD_PID = 2 ** 22 + 12345   # above the kernel's pid_max: no process has it


def _ended(tmp_path: Path, **record: object) -> str:
    home = tmp_path / "home"
    d = StackDir(home, "staging")
    d.ensure()
    d.state_file.write_text(json.dumps({"status": "stopped", "pid": DEAD_PID, "signal": "SIGTERM",
                                        "stopped_at": "2026-11-28T10:00:00Z", "image": "local/worker@sha256:"
                                        + "a" * 64, "job_ids": [], "jobs_read": True, **record}))
    ended = LocalPlatform(home, stacks_file(home)).status("staging").ended
    assert ended is not None
    return ended


def test_jobs_left_with_no_runpod_id_are_counted_as_left_in_flight(tmp_path: Path) -> None:
    ended = _ended(tmp_path, unsettled=0, no_runpod_id=2)
    assert "stopped by a signal (SIGTERM, at 2026-11-28T10:00:00Z)" in ended, ended
    assert "2 job(s) were still queued or in progress" in ended and "`goldgate stuck staging` lists them" in ended
    assert "no job was in flight" not in ended, ended


def test_a_negative_count_in_a_hand_edited_record_counts_as_none(tmp_path: Path) -> None:
    ended = _ended(tmp_path, unsettled=-3, no_runpod_id=0)
    assert "; no job was in flight; `goldgate up staging` starts it again" in ended, ended
