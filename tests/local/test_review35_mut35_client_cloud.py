"""Gaps a mutation audit of goldgate/commands/clients.py found in `goldgate client ... --target cloud`: a stack name
that is no stack name is refused before any pulumi command is printed or any stack file is read, a
goldgate:clientTokens that is not a mapping is refused in words rather than listed letter by letter, and the clients
are listed by name whatever order the stack file keeps them in."""

from __future__ import annotations

import json

import pytest
import yaml
from test_review34_clients_cli import _run

from goldgate import spec as specs


@pytest.mark.parametrize("action", ["add", "revoke", "list"])
@pytest.mark.parametrize("stack", ["Prod", "../staging", "prod;rm"])
def test_a_name_that_is_no_stack_name_is_refused_before_anything_is_printed_or_read(
        tmp_path, capsys, monkeypatch, action, stack) -> None:
    monkeypatch.setattr(specs, "STACKS_DIR", tmp_path / "stacks")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "staging.yaml").write_text("config: {}\n")  # what ../staging would reach from the stacks dir
    argv = [action, *(["alice"] if action != "list" else []), "--stack", stack, "--target", "cloud"]
    code, out, err = _run(capsys, tmp_path, *argv)
    assert code == 1 and out == "" and "is not a stack name" in err, (out, err)


def _stack_file(tmp_path, monkeypatch, clients: object) -> None:
    doc = {"config": {"goldgate:apiToken": {"secure": "v1:YXBp:dG9r"}, "goldgate:clientTokens": clients}}
    (tmp_path / "Pulumi.staging.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.setattr(specs, "STACKS_DIR", tmp_path)


@pytest.mark.parametrize("clients", [["alice", "bob"], "alice"])
def test_client_tokens_that_are_no_mapping_are_refused_in_words(tmp_path, capsys, monkeypatch, clients) -> None:
    _stack_file(tmp_path, monkeypatch, clients)
    code, out, err = _run(capsys, tmp_path, "list", "--stack", "staging", "--target", "cloud")
    assert code == 1 and out == "" and "goldgate:clientTokens is not a mapping of client name to token" in err, err


def test_cloud_clients_are_listed_by_name(tmp_path, capsys, monkeypatch) -> None:
    _stack_file(tmp_path, monkeypatch, {"zed": {"secure": "v1:emVk:dG9r"}, "alice": {"secure": "v1:YWw:dG9r"},
                                        "mobile": {"secure": "v1:bW9i:dG9r"}})
    code, out, err = _run(capsys, tmp_path, "list", "--stack", "staging", "--target", "cloud", "--json")
    assert code == 0, err
    assert [c["name"] for c in json.loads(out)["clients"]] == ["alice", "mobile", "zed"]
