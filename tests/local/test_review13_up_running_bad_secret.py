"""`goldgate up` of a running stack whose webhook secret files changed advised `goldgate down && goldgate up` (or a
deploy) to apply them, also when the next start would refuse them: following that advice left the stack down. The
advice now names the file and says to fix it first; the stack keeps serving on the old files meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest
from stackfiles import stacks_file

from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

SHORT = "tooshort"


@pytest.mark.parametrize("stack", ["staging", "prod"])
@pytest.mark.parametrize("breakage", ["short current", "current equals token", "previous equals current"])
def test_the_advice_for_refused_secret_files_is_to_fix_them_not_to_restart(home: Path, stack: str,
                                                                             breakage: str) -> None:
    platform = LocalPlatform(home, stacks_file(home))
    d = StackDir(home, stack)
    d.ensure()
    if breakage == "short current":
        d.secret_file("webhook_secret").write_text(SHORT)
    elif breakage == "current equals token":
        d.secret_file("webhook_secret").write_text(d.secret("api_token"))
    else:
        d.secret_file("webhook_secret_previous").write_text(d.secret("webhook_secret"))
    advice = platform.secrets_changed_advice(stack)
    assert "the next start would refuse them" in advice and "secrets/" in advice
    assert "fix the file before `goldgate down" in advice
    assert f"goldgate down {stack} && goldgate up {stack}" not in advice
    assert SHORT not in advice and d.secret("api_token") not in advice


def test_files_the_service_takes_get_the_apply_advice(home: Path) -> None:
    platform = LocalPlatform(home, stacks_file(home))
    d = StackDir(home, "staging")
    d.ensure()
    d.secret_file("webhook_secret_previous").write_text(d.secret("webhook_secret"))
    d.secret_file("webhook_secret").write_text("0123456789abcdef0123456789abcdef")
    advice = platform.secrets_changed_advice("staging")
    assert "apply them with `goldgate reload staging` (no job stops, no ledger entry)" in advice
