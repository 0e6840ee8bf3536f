"""Error lines that tell the operator what to do, done as told: each test brings the situation about on a local
stack, runs the command the message names exactly as printed (through the venv's `goldgate`, as a user types it),
and checks that it did what the message promised. The release's advice (checklist, history, rollback, gate)
is in test_review24_split_release_hint_advice.py: each test brings up stacks of its own, so the two files run
on two workers at once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from goldgate.local.platform import LocalPlatform

GOLDGATE = Path(sys.executable).parent / "goldgate"
JOB_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    try:
        yield home
    finally:
        for stack in ("staging", "prod"):
            LocalPlatform(home).down(stack)


def goldgate(home: Path, *args: str, reports: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`goldgate ARGS` as a user runs it, on this home; golden reports (a rollback's smoke run) go to `reports`
    rather than into the checkout's scripts/golden-tests/reports."""
    env = {**os.environ, "GOLDGATE_HOME": str(home)}
    env.pop("GOLDGATE_TARGET", None)
    extra = ["--reports-dir", str(reports)] if reports is not None else []
    return subprocess.run([str(GOLDGATE), *args, *extra], capture_output=True, text=True, env=env, timeout=300,
                          check=False)


def advised(message: str) -> list[str]:
    """The `goldgate ...` commands a message names, in order, as printed."""
    return re.findall(r"`(goldgate [^`]*)`", message)


def run_advice(home: Path, command: str, reports: Path | None = None) -> None:
    """Run `command` as printed (`a && b` as a shell runs it); each part must succeed."""
    for part in command.split("&&"):
        words = part.split()
        assert words[0] == "goldgate", command
        done = goldgate(home, *words[1:], reports=reports)
        assert done.returncode == 0, f"the advised `{part.strip()}` failed: {done.stderr[-1500:]}"


def status(home: Path, stack: str) -> dict:
    done = goldgate(home, "status", stack, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_an_emptied_api_token_on_a_running_stack_is_made_anew_by_the_command_its_error_names(home: Path) -> None:
    assert goldgate(home, "up", "staging").returncode == 0
    token = home / "stacks/staging/secrets/api_token"
    token.write_text("")
    refused = goldgate(home, "recover", JOB_ID, "--stack", "staging")
    assert refused.returncode == 1 and "is empty" in refused.stderr, refused.stderr
    # `up` alone leaves a running stack as it is: it said to fix the file first, and the file said to run `up`.
    again = goldgate(home, "up", "staging")
    notice = next(line for line in again.stderr.splitlines() if "secret files changed" in line)
    assert advised(notice)[0] == advised(refused.stderr)[0], notice

    run_advice(home, advised(refused.stderr)[0])
    made = token.read_text().strip()
    assert made, "the advised command made no new API token"
    ask = urllib.request.Request(status(home, "staging")["api_url"] + "/api/workflows",
                                 headers={"Authorization": f"Bearer {made}"})
    with urllib.request.urlopen(ask, timeout=30) as answer:
        assert answer.status == 200


def test_a_corrupt_state_file_s_advice_brings_the_running_stack_back_under_goldgate(home: Path) -> None:
    assert goldgate(home, "up", "staging").returncode == 0
    state = home / "stacks/staging/state.json"
    state.write_text("{torn")
    refused = goldgate(home, "status", "staging")
    assert refused.returncode == 1 and "remove it" in refused.stderr, refused.stderr
    state.unlink()  # "remove it"
    # then what it names; "run the command again" re-ran `status`, which called the running stack down
    for command in advised(refused.stderr) or ["goldgate status staging"]:
        run_advice(home, command)
    now = status(home, "staging")
    assert now["running"] is True, "after the advice the stack's host runs, but goldgate does not know it"
    with urllib.request.urlopen(now["api_url"] + "/healthz", timeout=30) as answer:
        assert answer.status == 200


def test_doctor_on_a_stack_with_no_image_names_the_command_that_gives_it_one(home: Path) -> None:
    refused = goldgate(home, "doctor", "--stack", "staging")
    assert refused.returncode == 1 and "no image deployed" in refused.stderr, refused.stderr
    assert advised(refused.stderr), f"a dead end: {refused.stderr}"
    run_advice(home, advised(refused.stderr)[0])
    checked = goldgate(home, "doctor", "--stack", "staging")
    assert checked.returncode == 0, checked.stdout[-1500:] + checked.stderr[-1500:]
