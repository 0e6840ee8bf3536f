"""`goldgate client add|revoke|list` on a local stack: one token file per client under the stack's secrets (0600 in a
0700 directory), the token printed once on stdout and nothing else there, the apply step on stderr; the stack's
service is given each client's sha256, never the token, and serves the client's token once it starts on it. Every
hostile input is refused in words: a bad name, a client that exists (add) or does not (revoke), a symbolic link or a
directory among the token files, a token equal to the API token, the 101st client. `--target cloud` prints the pulumi
commands and touches nothing."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import httpx
import pytest
from stackfiles import stacks_file
from test_review32_fixspec_input_limits_local import _host_config

from goldgate.cli import main
from goldgate.errors import StateError
from goldgate.local import client_tokens
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from service.config import ServiceConfig


def _run(capsys: pytest.CaptureFixture[str], home: Path, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["client", *argv, "--home", str(home)])
    except SystemExit as exc:  # a usage error (argparse): `-abc` reads as an option
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _clients(home: Path) -> Path:
    return home / "stacks" / "staging" / "secrets" / "clients"


def test_add_prints_the_token_alone_writes_it_private_and_says_how_to_apply_it(tmp_path, capsys):
    code, out, err = _run(capsys, tmp_path, "add", "web-frontend", "--stack", "staging")
    assert code == 0, err
    token = out.removesuffix("\n")
    assert out.count("\n") == 1 and len(token) >= 32 and token.isprintable() and " " not in token
    path = _clients(tmp_path) / "web-frontend"
    assert path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (path.parent, path.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert "`goldgate reload staging` (no job stops" in err and "goldgate deploy" not in err
    assert "goldgate down staging && goldgate up staging" not in err and token not in err

    code, out, err = _run(capsys, tmp_path, "add", "mobile", "--stack", "prod")
    assert code == 0 and "goldgate deploy" not in err and "`goldgate reload prod` (no job stops" in err
    assert "goldgate down prod && goldgate up prod" not in err


def test_list_names_each_client_and_when_it_was_written_never_a_token(tmp_path, capsys):
    tokens = [_run(capsys, tmp_path, "add", name, "--stack", "staging")[1].strip() for name in ("b-app", "a-app")]
    code, out, _ = _run(capsys, tmp_path, "list", "--stack", "staging", "--json")
    listed = json.loads(out)
    assert code == 0 and [c["name"] for c in listed["clients"]] == ["a-app", "b-app"]
    assert all(c["written_at"].endswith("Z") for c in listed["clients"])
    code, table_out, _ = _run(capsys, tmp_path, "list", "--stack", "staging")
    assert "a-app" in table_out and "b-app" in table_out
    for token in tokens:
        assert token not in out and token not in table_out
    assert "no clients" in _run(capsys, tmp_path, "list", "--stack", "prod")[1]


def test_revoke_removes_the_file_and_says_how_to_apply_it(tmp_path, capsys):
    _run(capsys, tmp_path, "add", "alice", "--stack", "staging")
    code, out, err = _run(capsys, tmp_path, "revoke", "alice", "--stack", "staging")
    assert code == 0 and out == "" and "401" in err and "goldgate reload staging" in err
    assert not (_clients(tmp_path) / "alice").exists()
    code, _, err = _run(capsys, tmp_path, "revoke", "alice", "--stack", "staging")
    assert code == 1 and "has no client alice" in err


@pytest.mark.parametrize("name", ["Alice", "1abc", "-abc", "a" * 33, "../secrets", "a/b", "a b", "a.b", "a\nb",
                                  "é", "api_token"])
def test_a_bad_client_name_is_refused_by_add_and_revoke_and_nothing_is_written(tmp_path, capsys, name):
    for action in ("add", "revoke"):
        code, out, err = _run(capsys, tmp_path, action, name, "--stack", "staging")
        assert code in (1, 2) and out == "", err
        assert "not a client name" in err or "required: name" in err
        assert err.rstrip("\n").splitlines()[-1].startswith("goldgate")  # the error itself is one line
    assert not _clients(tmp_path).exists()


def test_an_existing_client_is_not_replaced_by_add(tmp_path, capsys):
    first = _run(capsys, tmp_path, "add", "alice", "--stack", "staging")[1].strip()
    code, out, err = _run(capsys, tmp_path, "add", "alice", "--stack", "staging")
    assert code == 1 and out == "" and "already exists" in err and "goldgate client revoke alice" in err
    assert (_clients(tmp_path) / "alice").read_text().strip() == first


def test_the_101st_client_is_refused(tmp_path, capsys):
    d = StackDir(tmp_path, "staging")
    for n in range(100):
        client_tokens.add_client(d, f"c{n}")
    code, out, err = _run(capsys, tmp_path, "add", "one-more", "--stack", "staging")
    assert code == 1 and out == "" and "100 clients" in err
    assert len(os.listdir(_clients(tmp_path))) == 100


def test_an_unknown_stack_is_refused(tmp_path, capsys):
    code, out, err = _run(capsys, tmp_path, "add", "alice", "--stack", "nosuch")
    assert code == 1 and out == "" and "nosuch" in err


def test_the_cloud_target_prints_the_pulumi_commands_and_touches_nothing(tmp_path, capsys):
    code, out, _ = _run(capsys, tmp_path, "add", "alice", "--stack", "staging", "--target", "cloud")
    assert code == 0
    assert "pulumi config set --secret --path goldgate:clientTokens.alice --stack staging" in out
    assert "pulumi up --stack staging" in out
    code, out, _ = _run(capsys, tmp_path, "revoke", "alice", "--stack", "staging", "--target", "cloud")
    assert code == 0 and "pulumi config rm --path goldgate:clientTokens.alice --stack staging" in out
    code, out, err = _run(capsys, tmp_path, "add", "Alice", "--stack", "staging", "--target", "cloud")
    assert code == 1 and out == "" and "not a client name" in err
    assert not (tmp_path / "stacks").exists()


def test_the_service_config_carries_each_clients_hash_and_never_its_token(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    stacks = stacks_file(home)
    d = StackDir(home, "staging")
    d.ensure()
    tokens = {name: client_tokens.add_client(d, name) for name in ("alice", "bob")}
    config = _host_config(home, stacks)
    assert config["client_tokens"] == {name: hashlib.sha256(t.encode()).hexdigest() for name, t in tokens.items()}
    text = json.dumps(config)
    assert not any(token in text for token in tokens.values())
    assert ServiceConfig.from_mapping(config).client_tokens == config["client_tokens"]


def _refused(home: Path, stacks: Path) -> str:
    with pytest.raises(StateError) as refused:
        _host_config(home, stacks)
    return str(refused.value)


def test_a_symlink_a_directory_a_short_token_or_the_api_tokens_value_among_the_clients_is_refused_by_its_path(
        tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    stacks = stacks_file(home)
    d = StackDir(home, "staging")
    d.ensure()
    clients = client_tokens.clients_dir(d)
    client_tokens.add_client(d, "alice")
    outside = tmp_path / "elsewhere"
    outside.write_text("x" * 40)

    (clients / "linked").symlink_to(outside)
    said = _refused(home, stacks)
    assert str(clients / "linked") in said and "symbolic link" in said
    (clients / "linked").unlink()

    (clients / "adir").mkdir()
    assert str(clients / "adir") in _refused(home, stacks)
    (clients / "adir").rmdir()

    (clients / "short").write_text("too-short\n")
    said = _refused(home, stacks)
    assert str(clients / "short") in said and "too-short" not in said
    (clients / "short").unlink()

    (clients / "copied").write_text(d.secret("api_token") + "\n")
    said = _refused(home, stacks)
    assert str(clients / "copied") in said and "secrets/api_token" in said and d.secret("api_token") not in said
    (clients / "copied").unlink()

    (clients / "Bad.name").write_text("x" * 40)
    assert "is not a client's file" in _refused(home, stacks)
    (clients / "Bad.name").unlink()
    assert "alice" in _host_config(home, stacks)["client_tokens"]


def test_a_local_stack_serves_a_clients_token_and_refuses_one_it_does_not_hold(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    platform = LocalPlatform(home, stacks_file(home))
    d = StackDir(home, "staging")
    token = client_tokens.add_client(d, "alice")
    platform.up("staging", timeout_s=90)
    try:
        url = platform.status("staging").api_url
        with httpx.Client(base_url=url, timeout=30) as api:
            served = api.get("/api/workflows", headers={"Authorization": f"Bearer {token}"})
            refused = api.get("/api/workflows", headers={"Authorization": f"Bearer {token[:-1]}x"})
        # revoked on the running stack: `up` says its secret files changed; the restart that applies it ends it
        assert not platform.secrets_changed("staging")
        client_tokens.revoke_client(d, "alice")
        assert platform.secrets_changed("staging")
        assert "secrets/clients/" in platform.secrets_changed_advice("staging")
        platform.down("staging")
        platform.up("staging", timeout_s=90)
        with httpx.Client(base_url=platform.status("staging").api_url, timeout=30) as api:
            revoked = api.get("/api/workflows", headers={"Authorization": f"Bearer {token}"})
    finally:
        platform.down("staging")
    assert served.status_code == 200 and refused.status_code == 401 and revoked.status_code == 401
    lines = [json.loads(line) for line in (d.logs_dir / "service.jsonl").read_text().splitlines()
             if line.startswith("{")]
    served_lines = [x for x in lines if (x.get("http") or {}).get("path") == "/api/workflows"]
    assert [(x.get("data") or {}).get("client") for x in served_lines] == ["alice", None, None]
    log_text = (d.logs_dir / "service.jsonl").read_text()
    assert token not in log_text and hashlib.sha256(token.encode()).hexdigest() not in log_text
