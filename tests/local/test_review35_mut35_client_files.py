"""Gaps a mutation audit of goldgate/local/client_tokens.py found, each through the service config a local stack's
host builds (what `goldgate up` and `goldgate reload` start the service on): a client's file is taken with a token of
exactly the shortest length and refused one character under it, refused when it is longer than a secret file may be
or holds a space inside, refused when it holds the value of the webhook secret or of either previous secret, and two
clients holding one token are refused by their paths. Every refusal names the file, never the value."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from stackfiles import stacks_file
from test_review32_fixspec_input_limits_local import _host_config

from goldgate.errors import StateError
from goldgate.local import client_tokens
from goldgate.local.state import API_TOKEN_PREVIOUS, MAX_SECRET_BYTES, WEBHOOK_SECRET_PREVIOUS, StackDir
from service.clients import TOKEN_MIN_CHARS


@pytest.fixture
def stack(tmp_path: Path) -> tuple[Path, Path, StackDir]:
    home = tmp_path / "home"
    home.mkdir()
    stacks = stacks_file(home)
    d = StackDir(home, "staging")
    d.ensure()
    client_tokens.add_client(d, "alice")
    return home, stacks, d


def _refused(home: Path, stacks: Path) -> str:
    with pytest.raises(StateError) as refused:
        _host_config(home, stacks)
    return str(refused.value)


def test_a_token_of_the_shortest_length_is_served_and_one_character_less_refused(stack) -> None:
    home, stacks, d = stack
    path = client_tokens.clients_dir(d) / "bob"
    token = "k" * TOKEN_MIN_CHARS
    path.write_text(token + "\n")
    assert _host_config(home, stacks)["client_tokens"]["bob"] == hashlib.sha256(token.encode()).hexdigest()
    path.write_text(token[1:] + "\n")
    said = _refused(home, stacks)
    assert str(path) in said and f"at least {TOKEN_MIN_CHARS} characters" in said


def test_a_file_longer_than_a_secret_may_be_is_refused_not_cut_to_its_first_bytes(stack) -> None:
    home, stacks, d = stack
    path = client_tokens.clients_dir(d) / "bob"
    path.write_text("k" * MAX_SECRET_BYTES)
    assert "bob" in _host_config(home, stacks)["client_tokens"]
    path.write_text("k" * (MAX_SECRET_BYTES + 1))
    assert str(path) in _refused(home, stacks)


def test_a_token_with_a_space_inside_is_refused(stack) -> None:
    home, stacks, d = stack
    path = client_tokens.clients_dir(d) / "bob"
    path.write_text("half of a token " + "k" * TOKEN_MIN_CHARS + "\n")
    said = _refused(home, stacks)
    assert str(path) in said and "half of a token" not in said


@pytest.mark.parametrize("secret", ["webhook_secret", API_TOKEN_PREVIOUS, WEBHOOK_SECRET_PREVIOUS])
def test_a_client_holding_the_webhook_secret_or_a_previous_secret_is_refused_by_its_path(stack, secret) -> None:
    home, stacks, d = stack
    value = d.secret("webhook_secret") if secret == "webhook_secret" else "p" * 40
    if secret != "webhook_secret":
        d.secret_file(secret).write_text(value + "\n")
    path = client_tokens.clients_dir(d) / "bob"
    path.write_text(value + "\n")
    said = _refused(home, stacks)
    assert str(path) in said and f"secrets/{secret}" in said and value not in said


def test_two_clients_holding_one_token_are_refused_by_their_paths(stack) -> None:
    home, stacks, d = stack
    clients = client_tokens.clients_dir(d)
    (clients / "bob").write_text((clients / "alice").read_text())
    said = _refused(home, stacks)
    assert str(clients / "alice") in said and str(clients / "bob") in said and "same token" in said
    assert (clients / "alice").read_text().strip() not in said
