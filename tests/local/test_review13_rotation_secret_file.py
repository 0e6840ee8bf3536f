"""A local stack's `secrets/webhook_secret_previous`: written by the operator only while the webhook secret is
rotated, never made by `goldgate up`, and refused by its file's name (never its value) wherever the service would
refuse it at its start, before `up` starts a host. The host hands it to the service and masks it in its lines."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from goldgate.errors import StateError
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

STACK = "prod"
OLD = "5f1c0e9a7b3d2c4e6a8b0d1f3e5c7a9b"


def _stack(home: Path) -> StackDir:
    d = StackDir(home, STACK)
    d.ensure()
    return d


def test_up_makes_no_previous_secret_and_none_is_no_rotation(home: Path) -> None:
    d = _stack(home)
    assert not d.secret_file("webhook_secret_previous").exists()
    assert d.optional_secret("webhook_secret_previous") is None and d.webhook_secret_previous() is None


def test_the_previous_secret_is_read_as_the_others_and_kept_private(home: Path) -> None:
    d = _stack(home)
    path = d.secret_file("webhook_secret_previous")
    path.write_text(f"  {OLD}\n")  # by hand: an editor's line break, and the umask's mode
    path.chmod(0o644)
    d.ensure()
    assert d.webhook_secret_previous() == OLD
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _refused(d: StackDir, text: str) -> str:
    d.secret_file("webhook_secret_previous").write_text(text)
    with pytest.raises(StateError) as refused:
        d.ensure()
    said = str(refused.value)
    assert str(d.secret_file("webhook_secret_previous")) in said and "\n" not in said, said
    return said


@pytest.mark.parametrize(("text", "says"), [
    ("", "is empty: fix it (the old secret, alone on one line) or remove it"),
    ("\n", "is empty: fix it (the old secret, alone on one line) or remove it"),
    (OLD[:16] + " " + OLD[16:], "holds a character no previous webhook secret has"),
    (OLD[:15], "is shorter than 16 characters, which the service refuses"),
])
def test_a_previous_secret_the_service_cannot_use_is_refused_by_its_file(home: Path, text: str, says: str) -> None:
    said = _refused(_stack(home), text)
    assert says in said, said
    assert not text.strip() or OLD[:15] not in said


@pytest.mark.parametrize(("same_as", "says"), [
    ("webhook_secret", "holds the same value as"),
    ("api_token", "which the service refuses (a client holding the token"),
])
def test_a_previous_secret_equal_to_a_current_secret_is_refused_by_its_file(home: Path, same_as: str,
                                                                            says: str) -> None:
    d = _stack(home)
    current = d.secret(same_as)
    said = _refused(d, current + "\n")
    assert says in said and str(d.secret_file(same_as)) in said and current not in said, said


def test_up_refuses_a_previous_secret_equal_to_the_current_one_and_starts_no_host(home: Path) -> None:
    d = _stack(home)
    d.secret_file("webhook_secret_previous").write_text(d.secret("webhook_secret"))
    with pytest.raises(StateError, match="holds the same value as") as refused:
        LocalPlatform(home).up(STACK, timeout_s=60)
    assert d.secret("webhook_secret") not in str(refused.value)
    assert not d.state_file.exists(), "no host was started"


def test_the_host_masks_the_previous_secret_in_its_lines(home: Path) -> None:
    from stackfiles import stacks_file

    from goldgate.local.stackhost import StackHost

    d = _stack(home)
    d.secret_file("webhook_secret_previous").write_text(OLD)
    host = StackHost(STACK, home, stacks_file(home))
    try:
        host.log.error("stack.start_failed", message=f"a config quoted in an error: webhook_secret_previous={OLD}")
    finally:
        host.listener.close()
    text = (d.logs_dir / "stackhost.jsonl").read_text()
    assert "webhook_secret_previous=" in text and OLD not in text
