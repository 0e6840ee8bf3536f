"""Review 30 mutation audit (mut30). `emit` prints every value a render is handed on one line: a string inside a
list, and a mapping's key (a name read from a file, a workflow id), as well as a plain value; a newline in one
would start a line the render never wrote. And `recover`'s line says a job "had already ended" only of a job
that has: a duplicate delivery of a job still running (RunPod's IN_PROGRESS sent again) is not one."""

from __future__ import annotations

import argparse

import pytest

from goldgate.commands.local import _recovered_line
from goldgate.commands.output import emit

FAKE = "a\nstaging: ready (all checks passed)"


def _printed(capsys: pytest.CaptureFixture[str], data: object, render) -> list[str]:
    capsys.readouterr()
    emit(argparse.Namespace(json=False), data, render)
    return capsys.readouterr().out.splitlines()


def test_a_newline_in_a_list_item_is_printed_on_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _printed(capsys, {"names": [FAKE]}, lambda d: "names: " + ", ".join(d["names"]))
    assert lines == ["names: a\\nstaging: ready (all checks passed)"], lines


def test_a_newline_in_a_mapping_key_is_printed_on_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _printed(capsys, {"by": {FAKE: 3}}, lambda d: "\n".join(f"{k}: {v}" for k, v in d["by"].items()))
    assert lines == ["a\\nstaging: ready (all checks passed): 3"], lines


@pytest.mark.parametrize("status", ["in_progress", "queued"])
def test_recover_of_a_running_job_whose_delivery_was_a_duplicate_does_not_say_it_ended(status: str) -> None:
    line = _recovered_line("job-1", {"status": status, "reason": "duplicate", "applied": False}, None, "staging")
    assert line == f"job-1: {status} (duplicate)", line


def test_recover_of_an_ended_job_says_nothing_changed() -> None:
    line = _recovered_line("job-1", {"status": "failed", "reason": "duplicate", "applied": False}, None, "staging")
    assert line.endswith("it had already ended so (its webhook, or an earlier recover, settled it); nothing changed")
