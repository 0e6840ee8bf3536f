"""Each target compares with references of its own (review 26). scripts/golden-tests/references held the ComfyUI
emulator's renders (the local target) and was the one directory for both targets, so every golden run on the cloud
(a real GPU's render is tens of dHash bits away) failed every case, and references refreshed with cloud renders
would have failed every local run. The default references are now references/<target>; `--references-dir` is
still used as given. The committed directory is stood in for by a tmp one (nothing here writes the checkout)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from release_support import TOKEN, StandInApi, golden_suite, render_png, standin_api

import goldgate.release.cases as cases_module
import goldgate.release.gate as gate_module
import goldgate.release.golden as golden_module
from goldgate.release.cases import load_cases
from goldgate.release.gate import ErrorRate, PromotionRefused, evaluate
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.spec import Thresholds

A = "local/worker@sha256:" + "a" * 64


@pytest.fixture
def committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(the cases dir, the default references dir) of a suite whose local references are committed, cloud's not."""
    suite = golden_suite(tmp_path / "golden")
    root = tmp_path / "checkout-references"
    shutil.copytree(suite / "references", root / "local")
    for module in (cases_module, golden_module, gate_module):
        monkeypatch.setattr(module, "REFERENCES_DIR", root, raising=False)  # (older code: golden.py only)
    return suite / "cases", root


def _run(api: StandInApi, cases: Path, references: Path, target: str, update: bool = False) -> dict:
    return run_suite(load_cases(cases), ApiAccess(api.url, TOKEN),
                     SuiteTarget(stack="staging", target=target, image=A, workflow_version="2026.11.0",
                                 thresholds=Thresholds()),
                     references_dir=references, update_references=update, poll_s=0.01)


def _gpu(workflow: str, inputs: dict) -> list[bytes]:
    """Another renderer's pictures of the same cases: far from the emulator's."""
    w, h = int(inputs.get("width", 64)), int(inputs.get("height", 64))
    return [render_png(f"gpu:{workflow}:{inputs.get('prompt')}:{i}", w, h)
            for i in range(int(inputs.get("batch_size", 1)))]


def test_a_cloud_run_compares_with_the_cloud_references_and_names_them_and_the_command_when_missing(
        committed: tuple[Path, Path]) -> None:
    cases, root = committed
    with standin_api(StandInApi(image_tag=A)) as api:
        assert _run(api, cases, root, "local")["passed"] is True     # the local set, as committed
        report = _run(api, cases, root, "cloud")
    assert report["passed"] is False and report["references"]["dir"] == str(root / "cloud")
    details = [c["detail"] for case in report["cases"] for c in case["checks"] if c["name"] == "perceptual_hash"]
    assert details and all(
        f"in {root / 'cloud'} " in d and d.endswith("`goldgate golden staging --update-references --target cloud`")
        for d in details), details
    # The first run on a target: one run makes every reference, not one run per case (docs/CLOUD.md).
    assert all("the first run on this target" in d and "make its reference alone" not in d for d in details), details


def test_refreshing_the_cloud_references_leaves_the_local_ones_and_each_target_passes_against_its_own(
        committed: tuple[Path, Path]) -> None:
    cases, root = committed
    local_before = {p.name: p.read_bytes() for p in (root / "local").iterdir()}
    with standin_api(StandInApi(image_tag=A, renders=_gpu)) as gpu:
        assert _run(gpu, cases, root, "cloud", update=True)["passed"] is True
        assert sorted(p.name for p in (root / "cloud").iterdir()) == ["batch.png", "square.png"]
        assert _run(gpu, cases, root, "cloud")["passed"] is True
        assert _run(gpu, cases, root, "local")["passed"] is False    # a GPU render is not the emulator's
    assert {p.name: p.read_bytes() for p in (root / "local").iterdir()} == local_before
    with standin_api(StandInApi(image_tag=A)) as emulator:
        assert _run(emulator, cases, root, "local")["passed"] is True


def test_a_references_dir_given_is_used_as_it_is_on_either_target(committed: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    cases, root = committed
    given = tmp_path / "given"
    shutil.copytree(root / "local", given)
    with standin_api(StandInApi(image_tag=A)) as api:
        report = _run(api, cases, given, "cloud")
    assert report["passed"] is True and report["references"]["dir"] == str(given)


def test_the_gate_names_the_cloud_references_directory_and_the_cloud_command_for_a_missing_reference() -> None:
    report = {"schema": "goldgate.golden-report.v1", "suite": "full", "stack": "staging", "target": "cloud",
              "image": A, "passed": True, "failures": [], "finished_at": "2026-11-28T11:55:00+00:00",
              "latency_s": {"mean": 12.5}, "references_updated": False, "workflow_version": "2026.11.0",
              "references": {"dir": "scripts/golden-tests/references/cloud", "sha256": {}}}
    decision = evaluate(report, A, Thresholds(), ErrorRate(10, 0, "t"), now=datetime(2026, 11, 28, 12, tzinfo=UTC),
                        references={"square.png": None})
    message = str(PromotionRefused(decision))
    assert ("report_references_match: this checkout holds no reference image for 1 of the 1 (square.png) in "
            "scripts/golden-tests/references/cloud: create it with `goldgate golden staging --update-references "
            "--target cloud`") in message, message


def test_the_shipped_references_are_the_local_targets_and_the_cloud_set_only_the_suites() -> None:
    root = cases_module.GOLDEN_DIR / "references"
    shipped = load_cases(cases_module.GOLDEN_DIR / "cases")
    assert all((root / "local" / case.reference_name).is_file() for case in shipped)
    # Empty as shipped; the first cloud release commits its renders there (docs/CLOUD.md), each a case's reference.
    assert (root / "cloud").is_dir()
    assert {p.name for p in (root / "cloud").glob("*.png")} <= {case.reference_name for case in shipped}
    assert not list(root.glob("*.png"))   # none left where both targets would read them
