"""Review 29 (mut): the command a golden run gives to write one case's reference (a new case with none, or one whose
render CHANGED beyond its limits) names `--cases-dir` only when the case's file is not in the checkout's own
scripts/golden-tests/cases: the command for a shipped case is the one the README shows, and one for a case kept in
another directory must read it from there (without `--cases-dir`, `--case` names no case of the checkout's suite)."""

from __future__ import annotations

import shutil
from pathlib import Path

from goldgate.release.cases import GOLDEN_DIR, REFERENCES_DIR, load_cases, references_for
from goldgate.release.golden import _References


def _references(target: str = "local") -> _References:
    return _References(references_for(REFERENCES_DIR, target), True, "staging", target)


def test_a_shipped_case_is_named_by_its_id_alone() -> None:
    case = load_cases(GOLDEN_DIR / "cases")[0]
    assert _references().create_command(case) == f"goldgate golden staging --update-references --case {case.id}"
    assert _references("cloud").create_command(case, accept=True) == (
        f"goldgate golden staging --update-references --target cloud --case {case.id} --accept-changed {case.id}")


def test_a_case_kept_in_another_directory_is_read_from_there(tmp_path: Path) -> None:
    shipped = load_cases(GOLDEN_DIR / "cases")[0]
    own = tmp_path / "my cases"
    own.mkdir()
    shutil.copy(shipped.source, own / Path(shipped.source).name)
    case = next(c for c in load_cases(own) if c.id == shipped.id)
    assert _references().create_command(case) == (
        f"goldgate golden staging --update-references --cases-dir '{own}' --case {case.id}")
