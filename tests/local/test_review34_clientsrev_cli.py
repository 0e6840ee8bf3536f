"""Review of `goldgate client add|revoke|list` on a local stack, as an operator with a hostile home: a token file is
0600 whatever the umask, and one copied in by hand with another mode is made 0600 when the stack reads it; a symbolic
link in place of secrets/clients is refused by revoke too (it removed the file of that name wherever the link
pointed); `list` shows every client when two adds at once made a 101st, so the operator can pick one to revoke; a
cloud stack's client tokens set as one encrypted object are said to be so by `list --target cloud`."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
import yaml
from test_review34_clients_cli import _clients, _run

from goldgate import spec as specs
from goldgate.errors import StateError
from goldgate.local import client_tokens
from goldgate.local.state import StackDir


def _stack(home: Path) -> StackDir:
    d = StackDir(home, "staging")
    d.ensure()
    return d


@pytest.mark.parametrize("umask", [0o277, 0o000, 0o022])
def test_add_makes_the_token_file_0600_and_its_directory_0700_whatever_the_umask(tmp_path, capsys, umask):
    _stack(tmp_path)
    old = os.umask(umask)
    try:
        code, out, err = _run(capsys, tmp_path, "add", "alice", "--stack", "staging")
    finally:
        os.umask(old)
    assert code == 0, err
    path = _clients(tmp_path) / "alice"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text().strip() == out.strip()


def test_a_token_file_copied_in_with_another_mode_is_made_private_when_the_stack_reads_it(tmp_path):
    d = _stack(tmp_path)
    client_tokens.add_client(d, "alice")
    copied = _clients(tmp_path) / "bob"
    copied.write_text("b" * 43 + "\n")
    copied.chmod(0o644)
    _clients(tmp_path).chmod(0o755)
    assert set(client_tokens.client_hashes(d)) == {"alice", "bob"}
    assert stat.S_IMODE(copied.stat().st_mode) == 0o600
    assert stat.S_IMODE(_clients(tmp_path).stat().st_mode) == 0o700


def test_revoke_refuses_a_symbolic_link_in_place_of_the_clients_directory_and_removes_nothing_it_points_to(
        tmp_path, capsys):
    d = _stack(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "alice").write_text("kept")
    client_tokens.clients_dir(d).symlink_to(elsewhere)
    code, out, err = _run(capsys, tmp_path, "revoke", "alice", "--stack", "staging")
    assert code == 1 and out == "" and "is not a directory (a symbolic link or a file)" in err
    assert (elsewhere / "alice").read_text() == "kept"
    for argv in (("add", "bob"), ("list",)):
        code, out, err = _run(capsys, tmp_path, *argv, "--stack", "staging")
        assert code == 1 and out == "" and "symbolic link" in err
    assert os.listdir(elsewhere) == ["alice"]


def test_list_shows_every_client_past_the_100th_so_that_one_can_be_revoked(tmp_path, capsys):
    d = _stack(tmp_path)
    for n in range(100):
        client_tokens.add_client(d, f"c{n:03d}")
    (_clients(tmp_path) / "z-extra").write_text("z" * 43 + "\n")  # as a second `add` at the same moment would
    with pytest.raises(StateError, match="holds 101 clients"):
        client_tokens.client_hashes(d)  # what `goldgate up` reads: refused, naming the way out
    code, out, err = _run(capsys, tmp_path, "list", "--stack", "staging")
    assert code == 0, err
    assert "c000" in out and "z-extra" in out
    code, _, err = _run(capsys, tmp_path, "revoke", "z-extra", "--stack", "staging")
    assert code == 0, err
    assert len(client_tokens.client_hashes(d)) == 100


def test_adds_of_one_name_at_once_make_one_token_and_refuse_the_others(tmp_path):
    d = _stack(tmp_path)
    made: list[str] = []
    refused: list[str] = []
    start = threading.Barrier(8)

    def add() -> None:
        start.wait()
        try:
            made.append(client_tokens.add_client(d, "alice"))
        except StateError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=add) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len(refused) == 7 and all("already exists" in x for x in refused)
    assert (_clients(tmp_path) / "alice").read_text().strip() == made[0]


def test_cloud_list_of_client_tokens_set_as_one_encrypted_object_names_no_client_secure(tmp_path, capsys,
                                                                                       monkeypatch):
    """`pulumi config set --secret goldgate:clientTokens '{...}'` (no --path) stores `{secure: ...}`: its names are
    encrypted with the tokens. Before, list showed one client named "secure"."""
    doc: dict = {"config": {"goldgate:apiToken": {"secure": "v1:YXBp:dG9r"}}}  # what list reads of a stack file
    doc["config"]["goldgate:clientTokens"] = {"secure": "v1:b25l:b2JqZWN0"}
    (tmp_path / "Pulumi.staging.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setattr(specs, "STACKS_DIR", tmp_path)
    code, out, err = _run(capsys, tmp_path, "list", "--stack", "staging", "--target", "cloud")
    assert code == 1 and "secure" not in out and "one encrypted object" in err
    assert "pulumi config set --secret --path 'goldgate:clientTokens.<name>' --stack staging" in err
    doc["config"]["goldgate:clientTokens"] = {"web": {"secure": "v1:d2Vi:dG9r"}, "app": {"secure": "v1:YXBw:dG9r"}}
    (tmp_path / "Pulumi.staging.yaml").write_text(yaml.safe_dump(doc))
    code, out, err = _run(capsys, tmp_path, "list", "--stack", "staging", "--target", "cloud", "--json")
    assert code == 0, err
    assert [c["name"] for c in json.loads(out)["clients"]] == ["app", "web"] and "v1:" not in out
