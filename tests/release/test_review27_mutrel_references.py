"""Review 27 (mutrel): the gate's advice on a reference this checkout lacks names the directory it read. With
`--references-dir` given, that is the directory given, not the target's default one (a mutant naming
references/<target> survived the suite: every test gated on the default directory)."""

from __future__ import annotations

from pathlib import Path

from release_support import StandInApi, standin_api
from test_gate_and_lock import Stacks, failed

from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64


def test_a_missing_reference_is_looked_for_in_the_references_dir_given(tmp_path: Path, paths: GoldenPaths) -> None:
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A)) as api:
        stacks = Stacks(api.url, {"staging": A})
        run = run_golden(stacks, "staging", ledger, paths=paths, poll_s=0.01)
        assert run.passed
        (paths.references_dir / "square.png").unlink()   # this checkout lacks it now
        decision = check_gate(stacks, ledger, run.path, cases_dir=paths.cases_dir,
                              references_dir=paths.references_dir)[0]
    assert "report_references_match" in failed(decision)
    detail = {c.name: c.detail for c in decision.conditions}["report_references_match"]
    assert (f"this checkout holds no reference image for 1 of the 2 (square.png) in {paths.references_dir}: "
            f"create it with `goldgate golden staging --update-references --references-dir {paths.references_dir}`"
            ) in detail, detail
    assert "references/local" not in detail, detail
    # and the run after it reads that directory too: without the flag, `golden` wrote the checkout's own references
    assert (f"then run `goldgate golden staging --references-dir {paths.references_dir}` against the references in "
            f"{paths.references_dir}") in detail, detail
    assert "commit" not in detail, detail
