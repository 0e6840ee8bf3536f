"""A team's first golden case: the missing reference's advice says how to make that case's reference alone (the
command as printed rewrites every case's reference), and a failed job's error reaches the report with its end,
where the worker's first aid and the local target's "what to do" are."""

from __future__ import annotations

import shlex
from pathlib import Path

from release_support import StandInApi, standin_api
from test_promotion_evidence import Target

from goldgate.release import golden
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64


def test_the_missing_reference_advice_says_how_to_make_a_new_cases_reference_alone(
        tmp_path: Path, paths: GoldenPaths) -> None:
    [missing, *_] = sorted(paths.references_dir.iterdir())
    missing.unlink()
    with standin_api(StandInApi(image_tag=A)) as api:
        run = run_golden(Target(api, {"staging": A, "prod": A}), "staging", Ledger(tmp_path / "home"), suite="full",
                         paths=paths, poll_s=0.01)
    assert not run.passed
    [detail] = [check["detail"] for case in run.report["cases"] for check in case["checks"]
                if check["name"] == "perceptual_hash" and not check["passed"]]
    case_file = paths.cases_dir / f"{missing.stem}.yaml"  # the case whose reference it was
    assert case_file.is_file()
    # Before: only `goldgate golden staging --update-references ...`, which, typed as it reads, rewrites the
    # reference of every case, not only the new one. Now the command runs that case alone (`--case`).
    assert (f"`goldgate golden staging --update-references --cases-dir {shlex.quote(str(paths.cases_dir))} "
            f"--case {missing.stem} --references-dir") in detail, detail


def test_a_failed_jobs_error_keeps_its_end_in_the_report() -> None:
    advice = "test this workflow on a cloud STAGING stack (--target cloud)"
    error = "ComfyUI rejected the prompt: Node 'Image Save' not found. " + "x" * 400 + " " + advice
    brief = golden._brief(error)
    assert brief is not None
    # Before: cut at 300 characters, so the report and the release summary lost what to do.
    assert brief.endswith(advice), brief
    long = golden._brief("y" * 5000)
    assert long is not None and long.endswith("... (5000 characters)") and len(long) < 1100
