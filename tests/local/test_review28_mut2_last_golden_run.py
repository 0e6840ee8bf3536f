"""`goldgate status prod`'s SMOKE FAILED line reads the ledger's last golden run of PROD's image from the ledger's end
(goldgate.release.ledger.last_golden_run): the edges of that read. The newest run is the one, even when the older
one is in the same chunk of the file; a run that straddles two chunks is found whole; a cloud run of the same image
(a ledger both targets append to) is no verdict on the local PROD; a line edited after it was written (its hash no
longer its own) or, with GOLDGATE_LEDGER_KEY set, one that carries no valid MAC, is passed over as promote and
rollback refuse it, and a line off the hash chain, or a signed ledger read without the key, makes the ledger
unreadable (None), as promote and rollback refuse it; and a full golden run's failure is called that, not a smoke
run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from goldgate.release import ledger as ledger_file
from goldgate.release.ledger import Ledger, last_golden_run

IMAGE = "local/worker@sha256:" + "a" * 64
KEY = "k" * 40


def _golden(ledger: Ledger, passed: bool, suite: str = "smoke", target: str = "local", image: str = IMAGE) -> int:
    return ledger.append("golden", stack="prod", target=target, image=image, suite=suite, passed=passed,
                         role="prod", failures=[] if passed else [f"{suite}-case: rendered black"],
                         trigger="test").seq


def _forge(home: Path, **changes: object) -> None:
    """Append a copy of the ledger's last line with `changes`, chained to it and its hash recomputed (no MAC): what an
    edit by hand that knows the hash rule, but not the key, writes."""
    path = home / "ledger.jsonl"
    last = json.loads(path.read_bytes().splitlines()[-1])
    body = {k: v for k, v in last.items() if k not in ("hash", "mac")}
    body.update(seq=last["seq"] + 1, prev=last["hash"])   # chained to the line before it, unless `changes` say not
    body.update(changes)
    line = {**body, "hash": ledger_file.entry_hash(body)}
    with path.open("ab") as f:
        f.write((json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n").encode())


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(ledger_file.KEY_ENV, raising=False)
    return tmp_path / "home"


def test_the_newest_run_is_the_one_even_in_the_same_chunk(home):
    ledger = Ledger(home)
    _golden(ledger, passed=False)
    seq = _golden(ledger, passed=True)
    assert last_golden_run(home, "prod", IMAGE)["seq"] == seq


def test_a_run_across_two_chunks_of_the_file_is_read_whole(home, monkeypatch):
    monkeypatch.setattr(ledger_file, "_TAIL_CHUNK", 4096)
    ledger = Ledger(home)
    seq = _golden(ledger, passed=False)
    start = (home / "ledger.jsonl").stat().st_size
    ledger.append("build", image="local/worker@sha256:" + "b" * 64, notes="x")
    filler = (home / "ledger.jsonl").stat().st_size - start   # a build line of 1 character of notes
    line = start - (home / "ledger.jsonl").read_bytes().rfind(b"\n", 0, start - 1) - 1   # the golden line's length
    # Another build line, as long as puts the chunk boundary (4096 bytes from the end) in the golden line's middle.
    ledger.append("build", image="local/worker@sha256:" + "c" * 64, notes="x" * (4096 - line // 2 - 2 * filler))
    size = (home / "ledger.jsonl").stat().st_size
    assert start - line < size - 4096 < start, (start, line, size)
    found = last_golden_run(home, "prod", IMAGE)
    assert found is not None and found["seq"] == seq and found["passed"] is False


def test_a_cloud_run_of_the_image_is_no_verdict_on_the_local_prod(home):
    ledger = Ledger(home)
    seq = _golden(ledger, passed=False)
    _golden(ledger, passed=True, target="cloud")
    assert last_golden_run(home, "prod", IMAGE)["seq"] == seq


def test_an_edited_line_is_passed_over(home):
    ledger = Ledger(home)
    seq = _golden(ledger, passed=False)
    path = home / "ledger.jsonl"
    last = json.loads(path.read_bytes().splitlines()[-1])
    # In the chain after the failed run (its prev and seq), but its hash is the failed run's: edited after it was written
    forged = {**last, "seq": seq + 1, "prev": last["hash"], "passed": True}
    with path.open("ab") as f:
        f.write((json.dumps(forged, sort_keys=True, separators=(",", ":")) + "\n").encode())
    assert last_golden_run(home, "prod", IMAGE)["seq"] == seq


def test_a_copy_appended_off_the_chain_makes_the_ledger_unreadable(home):
    ledger = Ledger(home)
    _golden(ledger, passed=False)
    _forge(home, passed=True, failures=[], prev="0" * 64)   # its own hash right, its prev no entry's
    assert last_golden_run(home, "prod", IMAGE) is None


def test_with_the_ledger_key_a_line_without_its_mac_is_passed_over(home, monkeypatch):
    monkeypatch.setenv(ledger_file.KEY_ENV, KEY)
    ledger = Ledger(home, key=KEY.encode())
    seq = _golden(ledger, passed=False)
    _forge(home, passed=True, failures=[])
    assert last_golden_run(home, "prod", IMAGE)["seq"] == seq
    monkeypatch.delenv(ledger_file.KEY_ENV)
    # Unkeyed, a signed ledger cannot tell a line added by hand from its own: unreadable, as promote refuses it
    assert last_golden_run(home, "prod", IMAGE) is None


def test_a_failed_full_run_is_called_a_full_golden_run(home, capsys):
    from goldgate.cli import main
    from goldgate.local.state import StackDir

    StackDir(home, "prod").pin(IMAGE, reason="test")
    _golden(Ledger(home), passed=False, suite="full")
    capsys.readouterr()
    assert main(["status", "prod", "--home", str(home), "--json"]) == 0
    said = json.loads(capsys.readouterr().out)["smoke_failed"]
    assert said and "whose full golden run failed there" in said, said
