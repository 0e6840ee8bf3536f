"""A golden report says which references its renders were compared with: the directory and the sha256 of each
file as it was read. A run against `--references-dir <the candidate's own renders>` compares each render with
itself and passes; its report must let a reader (and the gate) tell it from a run against the committed ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

from release_support import TOKEN, StandInApi, golden_suite, render_png, standin_api

from goldgate.release.cases import load_cases
from goldgate.release.golden import REFERENCES_DIR, ApiAccess, SuiteTarget, run_suite
from goldgate.release.report import load_report, write_report
from goldgate.release.report_html import render
from goldgate.spec import Thresholds

IMAGE = "local/worker@sha256:" + "a" * 64


def run(api_url: str, root: Path, references: Path, update: bool = False) -> dict:
    return run_suite(load_cases(root / "cases"), ApiAccess(api_url, TOKEN),
                     SuiteTarget(stack="staging", target="local", image=IMAGE, workflow_version="2026.11.0",
                                 thresholds=Thresholds()),
                     references_dir=references, update_references=update, poll_s=0.01)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_report_records_the_references_dir_and_the_sha256_of_each_reference(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    refs = root / "references"
    with standin_api() as api:
        report = run(api.url, root, refs)
    assert report["passed"] is True, report["failures"]
    committed = {p.name: sha256_of(p) for p in refs.iterdir()}
    assert report["references"] == {"dir": str(refs.resolve()), "sha256": committed}
    for case in report["cases"]:
        first = case["images"][0]
        assert first["reference_sha256"] == committed[first["reference"]]
    # written and read back as the gate reads it
    again = load_report(write_report(report, tmp_path / "reports"))
    assert again["references"]["sha256"] == committed
    assert str(refs.resolve()) in render(report)


def test_a_run_against_the_candidates_own_renders_is_told_apart_by_its_report(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    committed = {p.name: sha256_of(p) for p in (root / "references").iterdir()}
    own = tmp_path / "own-renders"

    def renders_like_nothing_committed(workflow: str, inputs: dict) -> list[bytes]:
        size = int(inputs.get("width", 64)), int(inputs.get("height", 64))
        return [render_png(f"a broken model {i}", *size) for i in range(int(inputs.get("batch_size", 1)))]

    with standin_api(StandInApi(renders=renders_like_nothing_committed)) as api:
        honest = run(api.url, root, root / "references")
        run(api.url, root, own, update=True)  # the candidate's renders become "references" elsewhere
        fooled = run(api.url, root, own)
    assert honest["passed"] is False  # against the committed references, the broken renders fail
    assert fooled["passed"] is True and fooled["references_updated"] is False  # ...and against their own, pass
    # The report of the second says so: another directory, and none of the committed files' hashes.
    assert fooled["references"]["dir"] == str(own.resolve())
    assert set(fooled["references"]["sha256"]) == set(committed)
    assert all(fooled["references"]["sha256"][name] != sha for name, sha in committed.items())
    assert honest["references"]["sha256"] == committed


def test_a_reference_that_is_not_a_png_is_named_and_still_recorded(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    bogus = root / "references" / "square.png"
    bogus.write_text("<html>not an image</html>")
    with standin_api() as api:
        report = run(api.url, root, root / "references")
    assert report["passed"] is False
    (failure,) = [f for f in report["failures"] if f.startswith("square: perceptual_hash: reference square.png: "
                                                                "not a readable image")]
    assert " at 0x" not in failure and "b'<html>no'" in failure  # what the file begins with, not a buffer's address
    assert report["references"]["sha256"]["square.png"] == sha256_of(bogus)


def test_a_missing_reference_is_not_claimed_as_compared(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    (root / "references" / "batch.png").unlink()
    with standin_api() as api:
        report = run(api.url, root, root / "references")
    assert set(report["references"]["sha256"]) == {"square.png"}
    assert any("no reference image batch.png" in f for f in report["failures"])


def test_an_html_view_of_an_older_report_says_the_references_were_not_recorded(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    with standin_api() as api:
        report = run(api.url, root, root / "references")
    report.pop("references", None)
    assert "not recorded" in render(report)


def test_the_committed_references_dir_is_recorded_from_the_checkouts_root(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    with standin_api() as api:
        report = run(api.url, root, REFERENCES_DIR)  # compared (and failing) against the shipped references
    assert report["references"]["dir"] == "scripts/golden-tests/references/local"  # the local target's own
