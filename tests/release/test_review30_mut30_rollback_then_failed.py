"""Review 30 mutation audit (mut30): a rollback to the release PROD is pinned to, cut short, and then a smoke run of
that release on PROD that failed. The failed run is the newer verdict: the next command's line and the interrupt's
line say that run failed, never that it failed "before that rollback" nor that no smoke run judged the release
since the rollback began (both read the ledger's order backwards)."""

from __future__ import annotations

from pathlib import Path

from promotion_support import released
from test_promotion_evidence import A as TA
from test_promotion_evidence import B as TB
from test_review30_rel_rollback_cut_short import _smoke_failed, home  # noqa: F401 -- the fixture

from goldgate.release.rollback import left_behind, prod_state_warning
from goldgate.release.verification import GoldenPaths


def test_a_smoke_run_that_failed_after_the_rollback_began_is_the_newest_word(
        home: Path, tmp_path: Path, paths: GoldenPaths) -> None:  # noqa: F811
    with released(tmp_path, paths, TA, TB) as r:
        intent = r.ledger.append("rollback", phase="intent", stack="prod", target="local", image=TB, before=TB,
                                 reason="manual", trigger="test")
        failed = _smoke_failed(r.ledger, TB)       # `goldgate golden prod --smoke`, after the rollback was cut short
        interrupt = left_behind(r.target, r.ledger, "prod")
        warning = prod_state_warning(r.target, r.ledger, "prod")
    assert failed > intent.seq
    assert "before that rollback failed" not in interrupt, interrupt
    assert warning is not None and warning.startswith(
        f"prod is pinned to {TB}, whose smoke run failed there (ledger #{failed})"), warning
    assert "since its rollback to it" not in warning, warning
