"""A previous-secret file (`secrets/webhook_secret_previous`, `secrets/api_token_previous`) that cannot be used: its
refusal says to fix or remove that file, by its path, and what removing it does (the old value is no longer
accepted). `goldgate up` never makes such a file, so "run goldgate up again" fixed nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from goldgate.errors import StateError
from goldgate.local.state import StackDir

STACK = "staging"
OLD = "5f1c0e9a7b3d2c4e6a8b0d1f3e5c7a9b"


def _write(path: Path, kind: str, d: StackDir) -> None:
    if kind == "fifo":
        os.mkfifo(path)
        return
    path.write_bytes({"not utf-8": b"\xff\xfe" + OLD.encode(), "too short": OLD[:10].encode(), "empty": b"\n",
                      "a space inside": (OLD[:16] + " " + OLD[16:]).encode(), "too big": b"a" * 5000,
                      "equal to the api token": d.secret("api_token").encode(),
                      "equal to the webhook secret": d.secret("webhook_secret").encode()}[kind])


@pytest.mark.parametrize(("name", "no_longer"), [("webhook_secret_previous", "the previous secret is no longer accepted"),
                                                 ("api_token_previous", "the previous token is no longer accepted")])
@pytest.mark.parametrize("kind", ["not utf-8", "too short", "empty", "a space inside", "too big", "fifo",
                                  "equal to the api token", "equal to the webhook secret"])
def test_an_unusable_previous_secret_says_to_fix_or_remove_its_file_and_what_removing_ends(
        tmp_path: Path, name: str, no_longer: str, kind: str) -> None:
    d = StackDir(tmp_path, STACK)
    d.ensure()
    path = d.secret_file(name)
    _write(path, kind, d)
    with pytest.raises(StateError) as refused:
        d.ensure()   # what `goldgate up` and a deploy run before any host starts
    said = str(refused.value)
    assert str(path) in said and "or remove it" in said and no_longer in said, said
    assert "run `goldgate up" not in said, said   # up alone never fixes a file it does not make
    assert OLD[:10] not in said and d.secret("api_token") not in said and d.secret("webhook_secret") not in said
    path.unlink()   # removing it, as advised, is taken: no rotation under way
    d.ensure()
    assert d.webhook_secret_previous() is None and d.api_token_previous() is None
