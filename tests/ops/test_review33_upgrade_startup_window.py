"""`goldgate checklist staging`'s startup_log counts the new image's `models_loaded` lines from when its deploy
began: the deploy's ledger entry is written once the rollout is confirmed, and with jobs queued RunPod starts the new
image's workers during the rollout, so their start-up lines come before the entry. Counted from the entry alone, the
line said "no `models_loaded` line from a worker of <image>" (NOT READY) for a release whose workers had all
confirmed their models. An older ledger's deploy has no `started_at`: counted from its entry, as before."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from goldgate.ops.checklist_facts import read_log_facts, serving_window
from goldgate.release.ledger import Ledger

OLD = "local/worker@sha256:" + "a" * 64
NEW = "local/worker@sha256:" + "b" * 64


def _deploy(tmp_path: Path, **started: str) -> Ledger:
    ledger = Ledger(tmp_path / "home")
    ledger.append("deploy", stack="staging", target="local", before=None, after=OLD, rollout={}, image=OLD,
                  trigger="test")
    ledger.append("deploy", stack="staging", target="local", before=OLD, after=NEW, rollout={}, image=NEW,
                  trigger="test", **started)
    return ledger


def _loaded_during_rollout(tmp_path: Path, ledger: Ledger) -> int:
    entry = ledger.entries()[-1]
    logs = tmp_path / "logs"
    logs.mkdir()
    # A worker of the new image started a second before the deploy's entry was written (its rollout).
    line = {"schema": "goldgate.log.v1", "ts": _second_before(entry.ts), "level": "info", "event": "models_loaded",
            "component": "worker", "stack": "staging", "trace_id": None, "job_id": None,
            "workflow_version": "2026.11.0", "worker_image_tag": NEW, "message": "models loaded", "data": None}
    (logs / "worker-1.log").write_text(json.dumps(line) + "\n")
    window = serving_window(ledger.entries(), "staging", "staging", NEW)
    assert window is not None
    return read_log_facts(logs, windows={NEW: window}).models_loaded_by_image.get(NEW, 0)


def _second_before(ts: str) -> str:
    moment = datetime.fromisoformat(ts) - timedelta(seconds=1)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_worker_started_during_the_deploys_rollout_confirms_the_new_image(tmp_path: Path) -> None:
    began = _second_before(_second_before(_deploy(tmp_path / "probe").entries()[-1].ts))
    assert _loaded_during_rollout(tmp_path, _deploy(tmp_path, started_at=began)) == 1


def test_an_older_ledgers_deploy_without_a_start_counts_from_its_entry(tmp_path: Path) -> None:
    assert _loaded_during_rollout(tmp_path, _deploy(tmp_path)) == 0


def test_goldgate_deploy_records_when_it_began(tmp_path: Path) -> None:
    from goldgate.commands.release import do_deploy
    from goldgate.release.deployers.base import DeployResult

    class Deployer:
        target = "local"

        def spec(self, stack: str):
            from goldgate import spec as specs
            return specs.load_local(stack)

        def deploy(self, stack: str, image: str, progress) -> DeployResult:
            return DeployResult(stack, "local", OLD, image)

    ledger = Ledger(tmp_path / "home")
    do_deploy(Deployer(), ledger, "staging", NEW, "test")
    entry = ledger.entries()[-1]
    assert entry.kind == "deploy" and entry.get("started_at") <= entry.ts
