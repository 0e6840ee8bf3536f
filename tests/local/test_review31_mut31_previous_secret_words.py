"""A previous-secret file that cannot be used is refused with the commands that apply a fix to this stack (`goldgate
down <stack>`, `goldgate up <stack>`) and what removing the file ends for a client. Found by a mutation audit: the
stack's name and the consequence could be dropped with every earlier test passing."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.errors import StateError
from goldgate.local.state import StackDir


@pytest.mark.parametrize(("name", "ends"), [
    ("webhook_secret_previous", "webhooks of jobs sent before it and result URLs signed with it fail"),
    ("api_token_previous", "a client still sending it gets 401")])
def test_the_refusal_names_this_stacks_commands_and_what_removing_the_file_ends(
        tmp_path: Path, name: str, ends: str) -> None:
    d = StackDir(tmp_path, "staging-eu")
    d.ensure()
    d.secret_file(name).write_text("too-short\n")
    with pytest.raises(StateError) as refused:
        d.ensure()
    said = str(refused.value)
    assert "`goldgate down staging-eu` and `goldgate up staging-eu`" in said, said
    assert f"is no longer accepted ({ends})" in said, said
