"""A stack whose database file was deleted is never started anew on an empty database without a word: `up` (after a
`down`, or while it runs), and a deploy (promote and rollback deploy so too) refuse, naming the copy the service
saved of the deleted file, the backups and the recovery doc; an explicit file asks for a fresh start. Before, `up`
started the stack on a new empty database (its jobs gone, their ids 404), and a deploy started a new service on a
new empty file that answered every create 500 `no such table`."""

from __future__ import annotations

import httpx
import pytest
from stackfiles import stacks_file, worker_variant

from goldgate.errors import StateError
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}


def _create(platform: LocalPlatform, url: str) -> httpx.Response:
    return httpx.post(f"{url}/api/queue/create", json=CREATE, timeout=30,
                      headers={"authorization": f"Bearer {platform.api_token('staging')}"})


def test_a_deleted_database_is_not_started_anew_and_a_fresh_start_is_asked_for(home, tmp_path):
    platform = LocalPlatform(home, stacks_file(home))
    d = StackDir(platform.home, "staging")
    fresh = d.root / "start-on-a-new-database"  # the file that asks for a fresh start, as the refusal names it
    status = platform.up("staging")
    made = _create(platform, status.api_url)  # no image deployed: RunPod refuses it, and the job is recorded failed
    assert made.json()["error"]["code"] == "runpod_refused", made.text
    image = worker_variant(home, tmp_path)

    d.db_path.unlink()
    refused = _create(platform, status.api_url)
    assert refused.status_code == 503, refused.text
    rescued = sorted(d.root.glob("db.sqlite.rescued-*"))
    assert len(rescued) == 1

    # While it runs: a deploy starts no service on a new empty file, and `up` is not "already up".
    for attempt in (lambda: platform.deploy("staging", image), lambda: platform.up("staging")):
        with pytest.raises(StateError) as caught:
            attempt()
        message = str(caught.value)
        assert str(rescued[0]) in message and "goldgate dr-restore staging --list" in message, message
        assert "The database file was deleted" in message and str(fresh) in message, message
    assert not d.db_path.exists()
    assert platform.status("staging").image != image

    # Stopped and started again: refused the same, and no database file made.
    platform.down("staging")
    with pytest.raises(StateError) as caught:
        platform.up("staging")
    assert str(rescued[0]) in str(caught.value)
    assert not d.db_path.exists()

    # Asked for by hand: a fresh start, once.
    fresh.touch()
    status = platform.up("staging")
    assert not fresh.exists()
    assert _create(platform, status.api_url).json()["error"]["code"] == "runpod_refused"
    platform.down("staging")


def test_a_home_from_before_the_record_is_judged_by_its_service_log(home):
    platform = LocalPlatform(home, stacks_file(home))
    d = StackDir(platform.home, "staging")
    platform.up("staging")
    platform.down("staging")
    (d.root / "database.json").unlink(missing_ok=True)
    d.db_path.unlink()
    with pytest.raises(StateError) as caught:
        platform.up("staging")
    assert "no copy the service saved" in str(caught.value) and "dr-restore staging --list" in str(caught.value)
    assert not d.db_path.exists()


def test_a_fresh_start_asked_for_while_the_database_is_there_is_not_kept_for_a_later_loss(home):
    # Left in place, the file switched off the refusal for good: the next loss started anew without a word.
    platform = LocalPlatform(home, stacks_file(home))
    d = StackDir(platform.home, "staging")
    fresh = d.root / "start-on-a-new-database"
    platform.up("staging")
    platform.down("staging")
    fresh.touch()                       # asked for while nothing was lost
    platform.up("staging")
    assert not fresh.exists()           # removed, said, and the database kept
    platform.down("staging")
    d.db_path.unlink()                  # the next loss is refused again
    with pytest.raises(StateError):
        platform.up("staging")
    assert not d.db_path.exists()


def test_a_running_stack_with_no_copy_yet_is_told_how_to_get_one(home):
    platform = LocalPlatform(home, stacks_file(home))
    platform.up("staging")
    try:
        StackDir(platform.home, "staging").db_path.unlink()   # no write since: no copy saved yet
        with pytest.raises(StateError) as caught:
            platform.up("staging")
        message = str(caught.value)
        assert "send it one write if no client does" in message and "/proc/<service pid>/fd" in message, message
    finally:
        platform.down("staging")


def test_status_names_a_lost_database_while_the_stack_still_says_up(home, capsys, monkeypatch):
    import argparse

    from goldgate.commands import local as local_commands

    platform = LocalPlatform(home, stacks_file(home))
    platform.up("staging")
    try:
        StackDir(platform.home, "staging").db_path.unlink()
        status = platform.status("staging")
        assert status.running and status.database_lost and "goldgate dr-restore staging --list" in status.database_lost
        monkeypatch.setattr(local_commands, "_platform", lambda _args: platform)
        assert local_commands.cmd_status(argparse.Namespace(stack="staging", home=str(home), json=False)) == 0
        out = capsys.readouterr().out
        assert "  DATABASE" in out and "though the stack has run before" in out, out
    finally:
        platform.down("staging")
