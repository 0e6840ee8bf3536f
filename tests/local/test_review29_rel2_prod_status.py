"""Review 29 (rel2): what `goldgate status prod` and `goldgate up prod` say of PROD's release, read from the ledger.
- The SMOKE FAILED line believed a golden line off the hash chain, and without GOLDGATE_LEDGER_KEY an unsigned line
  in a signed ledger, which promote and rollback refuse: now the ledger is unreadable, as the UNVERIFIED line says.
- After a release failed smoke on PROD, a `goldgate promote --retry-rejected` of it cut short (SIGTERM, kill -9)
  before its smoke run was shown as the older run's SMOKE FAILED, with the advice to roll back and no word of the
  promotion to retry: the newest change speaks, in the UNVERIFIED line.
- `up` said a pin edited by hand was moved by "a deploy, promote or rollback ... interrupted"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prod_status_support import A, B, promoted, status
from stackfiles import stacks_file

from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.release import ledger as ledger_file
from goldgate.release.ledger import Ledger

KEY = "k" * 40


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(ledger_file.KEY_ENV, raising=False)
    return tmp_path / "home"


def _append_raw(home: Path, **fields: object) -> None:
    """A golden line of PROD appended by hand after the ledger's last line: its hash its own, no MAC."""
    path = home / "ledger.jsonl"
    last = json.loads(path.read_bytes().splitlines()[-1])
    body = {"seq": last["seq"] + 1, "ts": last["ts"], "kind": "golden", "prev": last["hash"], "stack": "prod",
            "target": "local", "image": A, "suite": "smoke", "passed": False, "role": "prod",
            "failures": ["smoke-case: rendered black"], "trigger": "test", **fields}
    line = {**body, "hash": ledger_file.entry_hash(body)}
    with path.open("ab") as f:
        f.write((json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n").encode())


def test_a_failed_smoke_line_off_the_chain_is_not_believed(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    promoted(Ledger(home), A)
    StackDir(home, "prod").pin(A, reason="promotion")
    _append_raw(home, prev="0" * 64)
    text, data = status(home, capsys)
    assert data["smoke_failed"] is None and "SMOKE FAILED" not in text, text
    said = data["unverified"]
    assert said and said.startswith(f"prod is pinned to {A}, and the release ledger ("), said
    assert "cannot be read" in said and "does not follow the entry before it" in said, said


def test_an_unsigned_failed_smoke_line_in_a_signed_ledger_is_not_believed_without_the_key(
        home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ledger_file.KEY_ENV, KEY)
    promoted(Ledger(home, key=KEY.encode()), A)
    StackDir(home, "prod").pin(A, reason="promotion")
    _append_raw(home)
    monkeypatch.delenv(ledger_file.KEY_ENV)
    text, data = status(home, capsys)
    assert data["smoke_failed"] is None and "SMOKE FAILED" not in text, text
    said = data["unverified"]
    assert said and "cannot be read" in said and f"{ledger_file.KEY_ENV} is not set" in said, said


def _failed_then_back(ledger: Ledger, image: str, back_to: str, automatic: bool) -> int:
    """`image` on PROD failed its smoke run there, and a rollback put `back_to` back: the failed run's seq."""
    if automatic:   # a promotion of it whose smoke run failed
        intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=image,
                               before=back_to, trigger="test")
    failed = ledger.append("golden", stack="prod", target="local", image=image, suite="smoke", passed=False,
                           role="prod", failures=["smoke-case: rendered black"], trigger="test").seq
    if automatic:
        ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", target="local",
                      image=image, before=back_to, after=image, pinned=image, prod_image=None,
                      outcome="smoke_failed", trigger="test")
    reason = f"automatic: promotion of {image} smoke failed" if automatic else "manual"
    back = ledger.append("rollback", phase="intent", stack="prod", target="local", image=back_to, before=image,
                         reason=reason, trigger="test")
    ledger.append("golden", stack="prod", target="local", image=back_to, suite="smoke", passed=True, role="prod",
                  failures=[], trigger="test")
    ledger.append("rollback", phase="outcome", intent_seq=back.seq, stack="prod", target="local", image=back_to,
                  before=image, after=back_to, pinned=back_to, prod_image=back_to, outcome="rolled_back",
                  reason=reason, trigger="test")
    return failed


def _retry_cut_short(home: Path, ledger: Ledger, image: str, before: str) -> int:
    """`goldgate promote --retry-rejected` of `image`: its intent recorded, the pin moved, then SIGTERM."""
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=image, before=before,
                           retry_rejected=True, trigger="test")
    StackDir(home, "prod").pin(image, reason="deploy")
    return intent.seq


def test_a_retry_of_a_rejected_release_cut_short_is_said_not_its_older_smoke_failure(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = Ledger(home)
    promoted(ledger, A)
    failed = _failed_then_back(ledger, B, A, automatic=True)
    intent = _retry_cut_short(home, ledger, B, A)
    text, data = status(home, capsys)
    assert data["smoke_failed"] is None and "SMOKE FAILED" not in text, text
    assert data["unverified"] == (
        f"prod is pinned to {B}, which no promotion verified there: its promotion (ledger #{intent}) did not finish, "
        f"cut short before any smoke run judged it; its smoke run there before that promotion failed (ledger #{failed}); "
        f"`goldgate promote --retry-rejected` tries it again (and smokes it), or `goldgate rollback` puts back {A} "
        "(not a verdict on it)")


def test_a_retry_cut_short_of_a_release_verified_there_before_its_failure_is_said_too(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = Ledger(home)
    promoted(ledger, A)
    promoted(ledger, B, before=A)
    verified = ledger.entries()[-1].seq
    failed = _failed_then_back(ledger, B, A, automatic=False)   # PROD's smoke of it failed later; rolled back
    intent = _retry_cut_short(home, ledger, B, A)
    text, data = status(home, capsys)
    assert data["smoke_failed"] is None and "SMOKE FAILED" not in text, text
    assert data["unverified"] == (
        f"prod is pinned to {B}, whose smoke run there failed (ledger #{failed}) after a promotion verified it there "
        f"(ledger #{verified}): its promotion (ledger #{intent}) did not finish, cut short before any smoke run judged it; "
        f"`goldgate promote --retry-rejected` tries it again (and smokes it), or `goldgate rollback` puts back {A} "
        "(not a verdict on it)")


def test_a_smoke_run_that_failed_after_the_retry_began_is_still_smoke_failed(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = Ledger(home)
    promoted(ledger, A)
    _failed_then_back(ledger, B, A, automatic=True)
    _retry_cut_short(home, ledger, B, A)
    again = ledger.append("golden", stack="prod", target="local", image=B, suite="smoke", passed=False, role="prod",
                          failures=["smoke-case: rendered black"], trigger="test").seq   # then killed in its rollback
    text, data = status(home, capsys)
    assert data["smoke_failed"] and f"whose smoke run failed there (ledger #{again}," in data["smoke_failed"], text
    assert data["unverified"] is None, data


def _up_says(home: Path) -> str:
    d = StackDir(home, "prod")
    d.ensure()
    said: list[str] = []
    LocalPlatform(home, stacks_file(home))._note_pin_never_served("prod", d, {"status": "ready", "image": A},
                                                                  said.append)
    [line] = said
    return line


def test_up_says_a_pin_edited_by_hand_was_pinned_outside_goldgate(home: Path) -> None:
    promoted(Ledger(home), A)
    StackDir(home, "prod").pin(B, reason="edited by hand")
    line = _up_says(home)
    assert line.startswith(f"prod: starting on its pin {B}, which its last host never served (it served {A}): no "
                           "promotion or rollback in the release ledger moved the pin there (it was pinned outside "
                           f"goldgate: {StackDir(home, 'prod').pin_file} edited by hand"), line
    assert "interrupted" not in line and "`goldgate status prod`" in line, line


def test_up_still_says_a_promotion_that_moved_the_pin_was_interrupted(home: Path) -> None:
    ledger = Ledger(home)
    promoted(ledger, A)
    _retry_cut_short(home, ledger, B, A)
    line = _up_says(home)
    assert "a deploy, promote or rollback that moved the pin was interrupted" in line, line
    assert "pinned outside goldgate" not in line, line
