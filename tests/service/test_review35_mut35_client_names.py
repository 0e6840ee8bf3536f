"""Gaps a mutation audit of service/clients.py found: the service config's `client_tokens` takes a client name only
as `goldgate client add` makes one (a lowercase letter first, at most 32 characters, no line break after it), takes
exactly MAX_CLIENTS clients and refuses one more, and a Worker binding nested too deep to parse is refused in words,
not with a traceback."""

from __future__ import annotations

import hashlib

import pytest
from service_testkit import make_config

from service.clients import MAX_CLIENTS, ClientTokensError, hashes_from_binding
from service.config import ConfigError


def _digest(n: int) -> str:
    return hashlib.sha256(f"client token number {n:04d} of this test".encode()).hexdigest()


def test_a_name_of_32_characters_is_taken_and_one_of_33_refused() -> None:
    longest = "w" + "e" * 31
    assert make_config(client_tokens={longest: _digest(1)}).client_tokens == {longest: _digest(1)}
    with pytest.raises(ConfigError, match="is not a client name"):
        make_config(client_tokens={longest + "b": _digest(1)})


@pytest.mark.parametrize("name", ["9web", "-web", "web_frontend", "web\n", "web-frontend\n"])
def test_a_name_that_starts_with_no_letter_or_ends_in_a_line_break_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="is not a client name"):
        make_config(client_tokens={name: _digest(1)})


def test_exactly_the_most_clients_are_taken_and_one_more_refused() -> None:
    most = {f"client-{n}": _digest(n) for n in range(MAX_CLIENTS)}
    assert len(make_config(client_tokens=most).client_tokens or {}) == MAX_CLIENTS
    with pytest.raises(ConfigError, match=f"names {MAX_CLIENTS + 1} clients; a stack takes at most {MAX_CLIENTS}"):
        make_config(client_tokens={**most, "one-more": _digest(MAX_CLIENTS)})


def test_a_binding_nested_too_deep_to_parse_is_refused_as_not_json() -> None:
    with pytest.raises(ClientTokensError, match="is not JSON"):
        hashes_from_binding("[" * 100_000 + "]" * 100_000)
