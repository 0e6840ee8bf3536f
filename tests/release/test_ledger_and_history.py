"""The ledger's hash chain, concurrent appends, and what it says about verified releases."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import shutil
import threading
from pathlib import Path

import pytest

from goldgate.release import ledger as ledger_module
from goldgate.release.history import UnknownRelease, interrupted, last_verified, resolve, verified_releases
from goldgate.release.ledger import Ledger, LedgerTampered, detect_trigger

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
C = "local/worker@sha256:" + "c" * 64


def promoted(ledger: Ledger, image: str, outcome: str = "promoted", release_id: str | None = None) -> None:
    if release_id:
        ledger.append("build", image=image, release_id=release_id)
    intent = ledger.append("promotion", phase="intent", stack="prod", image=image, before=None)
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", image=image,
                  prod_image=image if outcome == "promoted" else None, outcome=outcome)


def test_entries_chain_and_read_back_in_order(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    first = ledger.append("build", image=A, trigger="user:t")
    second = ledger.append("golden", stack="staging", image=A, passed=True)
    assert (first.seq, second.seq) == (1, 2) and second.prev == first.hash
    assert [e.kind for e in ledger.entries()] == ["build", "golden"]
    assert ledger.entries()[0].get("image") == A


@pytest.mark.parametrize("tamper", ["edit", "drop", "swap", "garbage"])
def test_tampering_is_detected_and_names_the_line(tmp_path: Path, tamper: str) -> None:
    ledger = Ledger(tmp_path)
    for image in (A, B, C):
        ledger.append("deploy", stack="staging", image=image)
    lines = ledger.path.read_text().splitlines()
    if tamper == "edit":
        entry = json.loads(lines[1])
        entry["image"] = C
        lines[1] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    elif tamper == "drop":
        del lines[1]
    elif tamper == "swap":
        lines[1], lines[2] = lines[2], lines[1]
    else:
        lines[2] = "{not json"
    ledger.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LedgerTampered, match=r"ledger\.jsonl:[23]"):
        ledger.entries()
    with pytest.raises(LedgerTampered):
        ledger.append("deploy", stack="staging", image=A)  # never extend a broken chain


def _append_many(home: str, n: int) -> None:
    ledger = Ledger(Path(home))
    for i in range(n):
        ledger.append("deploy", stack="staging", image=A, n=i)


def test_concurrent_appends_from_processes_keep_one_chain(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), 25)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert Ledger(tmp_path).verify() == 75


def test_a_reader_never_mistakes_an_append_in_progress_for_tampering(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "home")
    ledger.append("build", image=A, release_id="r1")
    shutil.copytree(tmp_path / "home", tmp_path / "copy")
    line = Ledger(tmp_path / "copy").append("golden", stack="staging", image=A, passed=False,
                                            failures=[f"case-{i}: perceptual_hash: distance 30" for i in range(20)])
    raw = json.dumps(line.to_dict(), sort_keys=True, separators=(",", ":")) + "\n"
    seen: list[object] = []
    with ledger.path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)           # an append is half-way through its line
        fh.write(raw[:100])
        fh.flush()
        reader = threading.Thread(target=lambda: seen.append(_read(ledger)))
        reader.start()
        reader.join(0.5)                         # give the reader every chance to see the half line
        fh.write(raw[100:])
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_UN)
    reader.join()
    assert seen == [2]


def _read(ledger: Ledger) -> object:
    try:
        return len(ledger.entries())
    except LedgerTampered as exc:
        return exc


def test_reserved_and_unknown_kinds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown ledger kind"):
        Ledger(tmp_path).append("coffee")
    with pytest.raises(ValueError, match="may not be named"):
        Ledger(tmp_path).append("build", hash="x")


def test_trigger_names_the_ci_run_or_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_RUN_ID", "12345")
    monkeypatch.setenv("GITHUB_ACTOR", "octo")
    assert detect_trigger() == "ci:github-actions run 12345 by octo"
    assert detect_trigger("release-bot") == "release-bot"
    monkeypatch.delenv("GITHUB_ACTIONS")
    monkeypatch.setenv("LOGNAME", "dana")
    monkeypatch.setenv("USER", "dana")
    assert detect_trigger() == "user:dana"


def test_only_smoke_verified_prod_images_are_verified_releases(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    promoted(ledger, A, release_id="2026.11.0-gaaaa-m1")
    promoted(ledger, B, outcome="smoke_failed")
    promoted(ledger, C)
    entries = ledger.entries()
    assert [r.image for r in verified_releases(entries)] == [A, C]
    assert last_verified(entries, exclude=C).image == A
    assert verified_releases(entries)[0].release_id == "2026.11.0-gaaaa-m1"


def rolled_back(ledger: Ledger, frm: str, to: str) -> None:
    intent = ledger.append("rollback", phase="intent", stack="prod", image=to, before=frm, reason="manual")
    ledger.append("rollback", phase="outcome", intent_seq=intent.seq, stack="prod", image=to, before=frm, after=to,
                  prod_image=to, outcome="rolled_back", reason="manual")


def test_a_second_rollback_goes_further_back_not_to_the_release_rolled_away_from(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    for image in (A, B, C):
        promoted(ledger, image)
    rolled_back(ledger, frm=C, to=B)                 # the operator took PROD off C
    assert last_verified(ledger.entries(), exclude=B).image == A
    rolled_back(ledger, frm=B, to=A)
    assert last_verified(ledger.entries(), exclude=A) is None
    assert resolve(ledger.entries(), C).image == C   # still reachable by name, deliberately
    promoted(ledger, C)                              # promoted again after a fix: a target once more
    assert last_verified(ledger.entries(), exclude=A).image == C


def test_resolve_accepts_ref_digest_prefix_and_release_id(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    promoted(ledger, A, release_id="rel-a")
    promoted(ledger, C)
    entries = ledger.entries()
    assert resolve(entries, A).image == A
    assert resolve(entries, "sha256:" + "a" * 64).image == A
    assert resolve(entries, "aaaaaaaa").image == A
    assert resolve(entries, "SHA256:" + "A" * 64).image == A  # a digest copied in capitals is the same digest
    assert resolve(entries, "AAAAAAAA").image == A
    assert resolve(entries, "rel-a").image == A
    with pytest.raises(UnknownRelease, match="not a verified release"):
        resolve(entries, B)
    with pytest.raises(UnknownRelease, match="no verified release"):
        resolve([], A)


def test_an_intent_without_outcome_is_reported_as_interrupted(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    promoted(ledger, A)
    ledger.append("promotion", phase="intent", stack="prod", image=B, before=A)
    [item] = interrupted(ledger.entries())
    assert (item.kind, item.image, item.before) == ("promotion", B, A)


def test_an_entry_whose_save_fails_is_kept_here_with_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    # A PROD job saves each entry as it is recorded; a refused push must not stop a promotion half way (its
    # automatic rollback and outcome still have to run): the entry stays here and the job's save step retries.
    monkeypatch.setenv("GOLDGATE_LEDGER_SAVE", 'echo "saving: $LEDGER_NOTE" >&2; echo "push refused" >&2; exit 3')
    ledger = Ledger(tmp_path / "home")
    entry = ledger.append("promotion", phase="intent", stack="prod", image="x", trigger="t")
    assert [e.hash for e in ledger.entries()] == [entry.hash]
    err = capsys.readouterr().err
    assert "ledger #1 is recorded here but not saved (exit 3: push refused)" in err


def test_a_save_that_hangs_is_cut_off_named_and_not_waited_for_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture) -> None:
    # A push that hangs: before, every later append (the rollback's intent, its outcome...) waited the full timeout
    # again, and the warning printed the whole save script (str(TimeoutExpired) quotes the command).
    monkeypatch.setattr(ledger_module, "SAVE_TIMEOUT_S", 2)
    monkeypatch.setattr(ledger_module, "_save_timed_out", False)   # and back after the test
    runs = tmp_path / "runs"
    monkeypatch.setenv("GOLDGATE_LEDGER_SAVE", f'echo "$LEDGER_NOTE" >> "{runs}"; sleep 300  # the hung push')
    ledger = Ledger(tmp_path / "home")
    ledger.append("rollback", phase="intent", stack="prod", image="x", trigger="t")
    ledger.append("rollback", phase="outcome", stack="prod", image="x", trigger="t")
    assert [e.seq for e in ledger.entries()] == [1, 2]
    assert runs.read_text().splitlines() == ["rollback intent #1"]
    err = capsys.readouterr().err
    assert "ledger #1 is recorded here but not saved (the save timed out after 2 s); this command saves no later " \
           "entry either: the job's save step saves them" in err
    assert "hung push" not in err and "ledger #2" not in err


def test_the_save_script_is_not_given_the_save_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A save script that runs goldgate (to check the ledger, say) must not save from inside the save.
    seen = tmp_path / "seen"
    monkeypatch.setenv("GOLDGATE_LEDGER_SAVE", f'echo "${{GOLDGATE_LEDGER_SAVE-unset}} $LEDGER_NOTE" > "{seen}"')
    Ledger(tmp_path / "home").append("build", image="x", trigger="t")
    assert seen.read_text() == "unset build #1\n"
