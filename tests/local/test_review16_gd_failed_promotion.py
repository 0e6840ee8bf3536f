"""Game day, "A failed promotion": PROD itself is faulty (every job fails there, whatever the image), so a
promotion's smoke fails and its automatic rollback's smoke fails too. The on-call engineer fixes PROD and then
follows the two commands docs/RUNBOOK.md gives for that case, read from its text: the rollback to the earlier
release must pass, and `--retry-rejected` must put the new digest on PROD. Real stacks, real golden runs over the
shipped suite (its reports under the test's own directory)."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

from ci_policy import needs
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "RUNBOOK.md"


def _runbook_steps_when_the_automatic_rollback_failed() -> list[str]:
    """The commands the runbook gives for that case, as written (`<that release>` still to fill in)."""
    text = " ".join(RUNBOOK.read_text(encoding="utf-8").split())
    found = re.search(r"When the automatic rollback failed too (.*?)\. A promotion", text)
    assert found, "docs/RUNBOOK.md, A failed promotion, says nothing of an automatic rollback that failed too"
    # the commands that act (`goldgate status prod`, also named there, only looks)
    return re.findall(r"`(goldgate (?:rollback|promote)[^`]*)`", found.group(1))


def _second_build(home: Path, tmp: Path) -> str:
    """Another digest: the worker source with one more comment line in its code."""
    source = tmp / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / "__init__.py").open("a", encoding="utf-8") as code:
        code.write("\n# A second build.\n")
    return image_store.build_local_image(source, home)


def _restart_prod(home: Path, faults: dict) -> None:
    platform = LocalPlatform(home, stacks_file(home, prod={"faults": faults, "webhook_retry_delay_s": 0.2}))
    platform.down("prod")
    platform.up("prod", timeout_s=90)


def test_a_promotion_whose_automatic_rollback_failed_too_is_recovered_with_the_runbooks_steps(home, tmp_path,
                                                                                                  capsys):
    steps = _runbook_steps_when_the_automatic_rollback_failed()
    assert [step.split()[1] for step in steps] == ["rollback", "promote"], steps
    reports = ["--reports-dir", str(tmp_path / "reports"), "--home", str(home)]
    # The setup's golden runs (the releases PROD ran before the incident) take their cases one at a time: one
    # STAGING worker per image instead of a cold start for each of three (most of a run's CPU). The report and
    # the gate are the same for either: what the cases rendered, not how many ran at once.
    setup_golden = ["--concurrency", "1"]
    platform = LocalPlatform(home, stacks_file(home, staging={"webhook_retry_delay_s": 0.2},
                                               prod={"webhook_retry_delay_s": 0.2}))
    first = image_store.build_local_image(WORKER_SOURCE, home)
    StackDir(home, "staging").pin(first, reason="test")
    platform.up("staging", timeout_s=90)
    platform.up("prod", timeout_s=90)
    try:
        assert main(["golden", "staging", *setup_golden, *reports]) == 0
        assert main(["promote", *reports]) == 0
        second = _second_build(home, tmp_path)
        assert main(["deploy", "staging", "--image", second, "--home", str(home)]) == 0
        assert main(["golden", "staging", *setup_golden, *reports]) == 0

        _restart_prod(home, {"failed_rate": 1})  # the incident: PROD fails every job, whatever it runs
        capsys.readouterr()
        assert main(["promote", *reports]) == 1
        said = capsys.readouterr()
        assert "automatic rollback" in said.out + said.err and "failed too" in said.out + said.err, said
        assert platform.pinned_image("prod") == first

        _restart_prod(home, {})  # the cause on PROD fixed
        for step in steps:
            argv = shlex.split(step.replace("<that release>", first))[1:]
            assert main([*argv, *reports]) == 0, f"`{step}` failed: {capsys.readouterr()}"
        assert platform.pinned_image("prod") == second
        assert platform.status("prod").image == second
    finally:
        platform.down("prod")
        platform.down("staging")
