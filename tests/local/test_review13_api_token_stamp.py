"""A hand-edited `secrets/api_token` on a running stack is a changed secret file too: `up` said only "already up",
and the advised restart then left the stack down on a token the service refuses. And a host an older goldgate
started, which recorded only the webhook secret files, is not reported changed for the token it never stamped."""

from __future__ import annotations

from pathlib import Path

import pytest
from stackfiles import stacks_file

from goldgate.errors import SpecError
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir


def _running(home: Path, monkeypatch: pytest.MonkeyPatch, recorded: dict) -> tuple[LocalPlatform, StackDir]:
    platform = LocalPlatform(home, stacks_file(home))
    d = StackDir(home, "staging")
    d.ensure()
    stamp = {k: v for k, v in d.rotated_secrets_stamp().items() if k in recorded}
    # What the host wrote into state.json when its service read the files (a live host is not needed for this).
    monkeypatch.setattr(platform, "_state", lambda _stack: {"secrets_stamp": stamp})
    return platform, d


def test_an_api_token_edited_on_a_running_stack_is_noticed_and_a_refused_one_named(home, monkeypatch):
    platform, d = _running(home, monkeypatch, {"api_token": 1, "webhook_secret": 1, "webhook_secret_previous": 1})
    assert not platform.secrets_changed("staging")
    d.secret_file("api_token").write_text(d.secret("webhook_secret"))  # the token and the secret now equal
    assert platform.secrets_changed("staging")
    advice = platform.secrets_changed_advice("staging")
    assert "the next start would refuse them" in advice and "secrets/api_token" in advice
    assert d.secret("webhook_secret") not in advice


def test_a_host_that_stamped_only_the_webhook_files_is_not_told_of_the_token(home, monkeypatch):
    platform, d = _running(home, monkeypatch, {"webhook_secret": 1, "webhook_secret_previous": 1})
    d.secret_file("api_token").write_text("0123456789abcdef0123456789abcdef")
    assert not platform.secrets_changed("staging")


def test_an_emptied_short_secret_is_said_to_need_down_and_up_not_a_deploy(home):
    d = StackDir(home, "staging")
    d.ensure()
    d.secret_file("webhook_secret").write_text("tooshort")
    with pytest.raises(Exception) as err:
        d.current_secrets()
    said = str(err.value)
    assert "make a new one (a deploy does not)" in said and "tooshort" not in said


def test_two_short_pulumi_secrets_are_named_together():
    from infra.program import refuse_current_secrets

    with pytest.raises(SpecError) as err:
        refuse_current_secrets("staging", {"apiToken": "short", "webhookSecret": "shorter"})
    assert "goldgate:apiToken and goldgate:webhookSecret are each shorter than 16 characters" in str(err.value)
