"""Review 29 (mut): the refusal of a stack file's unknown `goldgate:` key, as session 28's mutants of it left open.
A misspelt plain setting (`cloudflareApiBase`, whose value is a URL) is not said to hold a credential to rotate; a
misspelt secret's key is; one key is "is not a key", two "are not keys"."""

from __future__ import annotations

from pathlib import Path

from test_review28_inputfix_config_keys import refusal


def test_a_misspelt_setting_is_named_with_its_nearest_key_and_not_called_a_credential(tmp_path: Path) -> None:
    message = refusal(tmp_path, **{"goldgate:cloudflareApiBse": "https://api.cloudflare.example/client/v4"})
    assert "goldgate:cloudflareApiBse (did you mean goldgate:cloudflareApiBase?) is not a key of goldgate's stack " \
           "config: nothing reads it" in message, message
    assert "plain text" not in message and "rotate" not in message, message


def test_a_misspelt_secret_is_said_to_hold_a_value_in_plain_text(tmp_path: Path) -> None:
    message = refusal(tmp_path, **{"goldgate:webhookSecrt": "whsec-not-a-real-one-0123456789"})
    assert "goldgate:webhookSecrt (did you mean goldgate:webhookSecret?) is not a key" in message, message
    assert "goldgate:webhookSecrt holds a value in plain text: if it is a credential" in message, message
    assert "rotate it" in message and "whsec-not-a-real-one" not in message


def test_two_keys_are_not_keys(tmp_path: Path) -> None:
    message = refusal(tmp_path, **{"goldgate:cloudflareApiBse": "https://x.example", "goldgate:bogusKey": 1})
    assert " are not keys of goldgate's stack config: nothing reads them" in message, message
    assert "Rename or remove each" in message, message
