"""The gate reads the references of the target it promotes on (review 26): with the default references (per target,
references/<target>), `goldgate promote --target cloud` must compare the report's references with references/cloud,
and a local promotion with references/local; it read the one directory both targets shared. The committed directory
is stood in for by a tmp one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from release_support import StandInApi, golden_suite, render_png, standin_api
from test_gate_and_lock import Stacks, failed

import goldgate.release.cases as cases_module
import goldgate.release.gate as gate_module
import goldgate.release.golden as golden_module
from goldgate.release.gate import PromotionRefused
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64


class CloudStacks(Stacks):
    target = "cloud"


def _gpu(workflow: str, inputs: dict) -> list[bytes]:
    w, h = int(inputs.get("width", 64)), int(inputs.get("height", 64))
    return [render_png(f"gpu:{workflow}:{inputs.get('prompt')}:{i}", w, h)
            for i in range(int(inputs.get("batch_size", 1)))]


@pytest.fixture
def default_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GoldenPaths:
    """The golden paths with the default references dir: its local/ committed, its cloud/ empty."""
    suite = golden_suite(tmp_path / "golden")
    root = tmp_path / "checkout-references"
    shutil.copytree(suite / "references", root / "local")
    (root / "cloud").mkdir()
    for module in (cases_module, golden_module, gate_module):
        monkeypatch.setattr(module, "REFERENCES_DIR", root, raising=False)  # (older code: golden.py only)
    return GoldenPaths(cases_dir=suite / "cases", references_dir=root, reports_dir=suite / "reports")


def test_a_cloud_promotion_gates_on_the_cloud_references_and_a_local_one_on_the_local_ones(
        tmp_path: Path, default_paths: GoldenPaths) -> None:
    paths, root = default_paths, default_paths.references_dir
    with standin_api(StandInApi(image_tag=A, renders=_gpu)) as gpu:
        cloud = CloudStacks(gpu.url, {"staging": A})
        ledger = Ledger(tmp_path / "cloud-home")
        first = run_golden(cloud, "staging", ledger, paths=paths, poll_s=0.01)
        refused = check_gate(cloud, ledger, first.path, cases_dir=paths.cases_dir, references_dir=root)[0]
        assert "report_references_match" in failed(refused)
        message = str(PromotionRefused(refused))
        # Each command runs on the cloud target, with the golden paths the gate was given (review 31).
        given = f" --cases-dir {paths.cases_dir.resolve()} --reports-dir {paths.reports_dir.resolve()}"
        assert (f"in {root / 'cloud'}: create them with `goldgate golden staging --update-references --target "
                f"cloud{given}`") in message, message
        # The first cloud run failed for want of references alone: no new build is asked for.
        assert ("the image is not at fault: create the missing reference of batch, square and commit it "
                f"(report_references_match), then run `goldgate golden staging --target cloud{given}` on the same "
                "image") in message, message
        assert run_golden(cloud, "staging", ledger, paths=paths, update_references=True, poll_s=0.01).passed
        run = run_golden(cloud, "staging", ledger, paths=paths, poll_s=0.01)
        decision = check_gate(cloud, ledger, run.path, cases_dir=paths.cases_dir, references_dir=root)[0]
        assert decision.passed, failed(decision)
    with standin_api(StandInApi(image_tag=A)) as emulator:
        local = Stacks(emulator.url, {"staging": A})
        ledger = Ledger(tmp_path / "local-home")
        run = run_golden(local, "staging", ledger, paths=paths, poll_s=0.01)
        decision = check_gate(local, ledger, run.path, cases_dir=paths.cases_dir, references_dir=root)[0]
        assert run.passed and decision.passed, failed(decision)
