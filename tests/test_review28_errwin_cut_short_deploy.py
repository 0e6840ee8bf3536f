"""A STAGING deploy cut short by kill -9 of its host (review 28, the on-call rehearsal). The deploy's error said only
"`goldgate up staging` starts it again on its pinned image"; `up` did, with no deploy of that pin in the ledger, and
`goldgate checklist staging` then failed `staging_image_pipeline` with "...the ledger records no deploy of it (pinned by
hand?)". Both now say what records it: `goldgate deploy staging --image <it>`, then a golden run. Followed, the line
passes, and the start-up line does not fail for the warm workers that deploy kept (they started after `up`, before the
deploy the ledger now counts from)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
from checklist_support import checklist_checks

sys.path.insert(0, str(Path(__file__).resolve().parent / "local"))    # the local-target test kit
sys.path.insert(0, str(Path(__file__).resolve().parent / "release"))

from stackfiles import worker_variant
from test_review28_deployfix_interrupted_deploy import _gone

from goldgate.cli import main
from goldgate.commands.local import ensure_up
from goldgate.errors import StateError
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.release.deployers.local import LocalDeployer
from goldgate.release.ledger import Ledger


def test_a_deploy_its_host_died_in_says_how_to_record_it_and_the_checklist_agrees(tmp_path: Path, capsys) -> None:
    home, reports = tmp_path / "home", tmp_path / "reports"
    home.mkdir()
    platform = LocalPlatform(home)
    try:
        a = ensure_up(platform, "staging").image
        assert main(["deploy", "staging", "--image", a, "--home", str(home)]) == 0   # A, recorded
        b = worker_variant(home, tmp_path)
        host = json.loads(StackDir(home, "staging").state_file.read_text())["pid"]

        def crash(line: str) -> None:   # kill -9 of the host as the deploy says "redeploying"
            if line.endswith("redeploying"):
                os.kill(host, signal.SIGKILL)
                assert _gone(host)

        with pytest.raises(StateError) as stopped:
            LocalDeployer(home, platform).deploy("staging", b, crash)
        said = str(stopped.value)
        # before: "... `goldgate up staging` starts it again on its pinned image" and nothing of the ledger
        assert f"then `goldgate deploy staging --image {b}` records it, and `goldgate golden staging`" in said, said
        assert [e.get("after") for e in Ledger(home).entries() if e.kind == "deploy"] == [a]

        where = ["--home", str(home), "--reports-dir", str(reports)]
        assert main(["up", "staging", "--home", str(home)]) == 0
        assert main(["golden", "staging", *where]) == 0   # what the rehearsal ran next: its workers start on B
        line = checklist_checks(capsys, "staging", home, reports)["staging_image_pipeline"]
        assert line["status"] == "fail", line
        assert "pinned by hand" not in line["evidence"], line
        assert f"`goldgate deploy staging --image {b}` records it, then `goldgate golden staging`" in \
            line["evidence"], line

        # the advice, followed
        assert main(["deploy", "staging", "--image", b, "--home", str(home)]) == 0
        assert main(["golden", "staging", *where]) == 0
        checks = checklist_checks(capsys, "staging", home, reports)
        assert checks["staging_image_pipeline"]["status"] == "pass", checks["staging_image_pipeline"]
        # the deploy kept the workers that started after `up`: their models_loaded came before its window
        assert checks["startup_log"]["status"] != "fail", checks["startup_log"]
        assert checks["all_jobs_images"]["status"] == "pass", checks["all_jobs_images"]
    finally:
        platform.down("staging")
