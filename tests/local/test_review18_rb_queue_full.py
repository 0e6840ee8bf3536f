"""Game day, "Clients get 429 `queue_full`": a local STAGING whose cap on jobs in flight is reached
(its webhooks lost, so its jobs stay queued), followed as docs/RUNBOOK.md says, word for word: step 1's
`goldgate stuck` shows the line the runbook quotes, step 3 raises the cap in the stack file and applies
it with the command the step gives, and the section's way to tell the incident is over holds. As it was,
step 3's `goldgate up` of the running stack left the old cap in force while `goldgate stuck` already
counted against the new one: not full, yet every create was refused."""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from ci_policy import needs
from processes import kill_everything_naming
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands import local, ops
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "RUNBOOK.md"
TITLE = "Clients get 429 `queue_full`"


def _section() -> str:
    text = RUNBOOK.read_text(encoding="utf-8")
    start = text.index(f"\n## {TITLE}\n")
    return " ".join(text[start:text.index("\n## ", start + 1)].split())


def _step(section: str, n: int) -> str:
    start = section.index(f" {n}. ")
    end = section.find(f" {n + 1}. ", start)
    return section[start:end if end > 0 else len(section)]


def _quoted_full_line(section: str) -> str:
    """The `in flight: ...` line step 1 says `goldgate stuck` ends with while creates are refused."""
    quoted = re.search(r"`goldgate stuck <stack>`.*? ends with `(in flight: [^`]+)`", _step(section, 1))
    assert quoted, "step 1 quotes no `in flight: ...` line"
    return quoted.group(1)


def _local_apply(section: str) -> list[list[str]]:
    """Step 3's command(s) that apply the raised cap to a local stack, each as argv for `main`."""
    spans = [s for s in re.findall(r"`([^`]+)`", _step(section, 3)) if s.startswith("goldgate ")]
    assert spans, "step 3 gives no goldgate command to apply the new cap"
    return [shlex.split(part.replace("<stack>", "staging"))[1:] for part in spans[0].split("&&")]


def _with_cap(path: Path, cap: int) -> None:
    doc = yaml.safe_load(path.read_text())
    doc["stacks"]["staging"].setdefault("api", {})["max_jobs_in_flight"] = cap
    path.write_text(yaml.safe_dump(doc))


@pytest.fixture(scope="module")
def full_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    """STAGING at most one job in flight, every webhook lost: its first job fills it until recovered."""
    tmp = tmp_path_factory.mktemp("rb-queue-full")
    home = tmp / "home"
    path = stacks_file(tmp, endpoint={"workers_max": 1},
                       staging={"faults": {"drop_all_deliveries_rate": 1}, "webhook_retry_delay_s": 0.2})
    _with_cap(path, 1)
    platform = LocalPlatform(home, path)
    StackDir(home, "staging").pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    platform.up("staging", timeout_s=90)
    try:
        yield platform
    finally:
        platform.down("staging")
        kill_everything_naming(str(home))


@functools.cache
def _http() -> httpx.Client:
    """One client for the module's creates: `httpx.post` makes a client, and an SSL context, each time (~40 ms)."""
    return httpx.Client(timeout=30)


def _create(platform: LocalPlatform) -> int:
    api_url = platform.require_running("staging")["api_url"]  # what `status` names, without its RunPod calls
    answer = _http().post(f"{api_url}/api/queue/create",
                          headers={"Authorization": f"Bearer {platform.api_token('staging')}"},
                          json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "queue full"}})
    return answer.status_code


def _stuck(platform: LocalPlatform, capsys: pytest.CaptureFixture) -> str:
    capsys.readouterr()
    main(["stuck", "staging", "--home", str(platform.home)])
    return capsys.readouterr().out


def test_a_full_stack_is_shown_full_and_the_raised_cap_applies_as_the_runbook_says(full_stack, capsys):
    section = _section()
    with pytest.MonkeyPatch.context() as mp:
        for module in (local, ops):  # the CLI reads this test's stacks file
            mp.setattr(module, "_platform", lambda _args: full_stack)
        assert _create(full_stack) == 202
        assert _create(full_stack) == 429
        full = _quoted_full_line(section).replace("N", "1").replace("M", "1")
        assert full in _stuck(full_stack, capsys)  # step 1: the line the runbook quotes

        _with_cap(full_stack.stacks_file, 3)  # step 3: the cap raised in the stack file, not applied yet
        assert _create(full_stack) == 429
        shown = _stuck(full_stack, capsys)
        assert full in shown, shown  # the stack still refuses every create: it must not read as having room
        assert "`goldgate reload staging` applies (no job stops)" in shown

        for argv in _local_apply(section):
            assert main([*argv, "--home", str(full_stack.home)]) == 0
        assert _create(full_stack) == 202  # the job from before the reload, still queued, and this one
        shown = _stuck(full_stack, capsys)
        assert "in flight: 2 of at most 3" in shown and "(FULL)" not in shown, shown  # the section's "over"
