"""docs/RUNBOOK.md's secret rotation redeploys STAGING with the image it already runs (`goldgate deploy staging
--image <the image it runs>`), as does a release of an unchanged tree. Such a redeploy is no new RunPod release: the
warm workers stay, and their `models_loaded` lines come before the redeploy. `goldgate checklist staging` then said
NOT READY ("no models_loaded line from a worker of ... since deploy #N ... the preflight did not confirm the pinned
image's models"): the start-up line counted from the newest deploy. It now counts `models_loaded` from the deploy
that switched the stack TO the image, and `preflight_failed` still from the newest deploy."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from checklist_support import checklist_checks, released_locally

from goldgate.cli import main
from goldgate.logs import JsonLogger
from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts, LogFacts, read_log_facts, serving_window
from goldgate.release.ledger import Entry

X = "local/worker@sha256:" + "a" * 64
Y = "local/worker@sha256:" + "b" * 64


def test_a_redeploy_of_the_image_staging_runs_leaves_the_startup_line_green(tmp_path, capsys):
    with released_locally(tmp_path) as (home, reports, platform):
        image = platform.pinned_image("staging")
        # the RUNBOOK's secret rotation, step 3: the image it runs, again
        assert main(["deploy", "staging", "--image", image, "--home", str(home)]) == 0
        assert main(["golden", "staging", "--home", str(home), "--reports-dir", str(reports)]) == 0
        lines = checklist_checks(capsys, "staging", home, reports)
    startup = lines["startup_log"]
    # Before: FAIL "no `models_loaded` line from a worker of <image> since deploy #7 ...".
    assert startup["status"] == "pass", startup["evidence"]
    assert "`models_loaded` start-up line(s) from workers of" in startup["evidence"]
    assert "(then redeployed: deploy #" in startup["evidence"], startup["evidence"]
    # the job lines still count from the newest deploy, as the gate's error rate does
    assert "(then redeployed" not in lines["cold_start"]["evidence"]


# -- which deploy switched the stack to its image ----------------------------------------------------------------

def _ts(second: int) -> str:
    return f"2026-12-01T10:00:{second:02d}.000Z"


def _deploys(*steps: tuple[int, str | None, str], forged: int | None = None) -> list[Entry]:
    """STAGING's deploys, (second, before, after) each, one a second apart; `forged`: that second's has no valid MAC."""
    return [Entry(seq=i, ts=_ts(second), kind="deploy", fields={"stack": "staging", "before": before, "after": after,
                                                             "image": after, "target": "local"},
                  prev="", hash="", authentic=second != forged)
            for i, (second, before, after) in enumerate(steps, start=1)]


def test_the_startup_window_opens_at_the_deploy_that_switched_to_the_image():
    redeployed = serving_window(_deploys((1, None, X), (5, X, X), (9, X, X)), "staging", "staging", X)
    assert redeployed.since == _ts(9) and redeployed.startup_since == _ts(1)
    assert redeployed.startup_words() == f"since deploy #1 at {_ts(1)} (then redeployed: deploy #3 at {_ts(9)})"
    # switched away and back: the workers of the first spell were replaced
    back = serving_window(_deploys((1, None, X), (3, X, Y), (5, Y, X), (9, X, X)), "staging", "staging", X)
    assert back.startup_since == _ts(5)
    # pinned by hand between two deploys (the second records another image before it): no warm worker kept
    by_hand = serving_window(_deploys((1, None, X), (5, Y, X), (9, X, X)), "staging", "staging", X)
    assert by_hand.startup_since == _ts(5)
    # a switch is a switch: nothing earlier
    switched = serving_window(_deploys((1, None, Y), (9, Y, X)), "staging", "staging", X)
    assert switched.startup_since is None and switched.startup_words() == switched.to_words()
    # an entry that does not authenticate under the ledger key does not widen the window
    forged = serving_window(_deploys((1, None, X), (5, X, X), (9, X, X), forged=1), "staging", "staging", X)
    assert forged.startup_since == _ts(5)


def _log(directory: Path, image: str, event: str, second: int) -> None:
    buffer = io.StringIO()
    log = JsonLogger("worker", buffer, stack="staging", workflow_version="2026.11.0", worker_image_tag=image)
    if event == "models_loaded":
        log.info("models_loaded", message="6 model files present")
    else:
        log.error("preflight_failed", message="checkpoints/sd_xl_base_1.0.safetensors: missing")
    line = json.loads(buffer.getvalue())
    line["ts"] = _ts(second)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"worker-{second}.log").open("a") as fh:
        fh.write(json.dumps(line) + "\n")


def _startup_line(logs: LogFacts) -> tuple[str, str]:
    return checklist.startup_log(Facts(stack="staging", now=datetime.now(UTC), images={"staging": X}, logs=logs))


def test_models_loaded_counts_since_the_switch_and_preflight_failures_since_the_redeploy(tmp_path):
    window = serving_window(_deploys((1, None, X), (9, X, X)), "staging", "staging", X)
    windows = {X: window}
    _log(tmp_path / "warm", X, "models_loaded", 2)  # the warm worker, started after deploy #1
    status, evidence = _startup_line(read_log_facts(tmp_path / "warm", windows=windows))
    assert status == checklist.PASS, evidence
    # a worker that failed its preflight before the redeploy (the snapshot fixed since) is not held against it
    _log(tmp_path / "warm", X, "preflight_failed", 4)
    status, evidence = _startup_line(read_log_facts(tmp_path / "warm", windows=windows))
    assert status == checklist.PASS, evidence
    # one since the redeploy is
    _log(tmp_path / "warm", X, "preflight_failed", 10)
    status, evidence = _startup_line(read_log_facts(tmp_path / "warm", windows=windows))
    assert status == checklist.FAIL and "1 `preflight_failed` line(s)" in evidence, evidence
    # a worker of the image from before the switch to it says nothing
    before = serving_window(_deploys((1, None, Y), (5, Y, X), (9, X, X)), "staging", "staging", X)
    _log(tmp_path / "old", X, "models_loaded", 0)
    status, evidence = _startup_line(read_log_facts(tmp_path / "old", windows={X: before}))
    assert status == checklist.FAIL and f"since deploy #2 at {_ts(5)}" in evidence, evidence

