"""docs/INTERFACES.md, the contract a client is written against, names every 503 the API answers and what a
client does about each, and the challenge of a refused webhook.

Today added 503 `storage_full` (a full database, `Retry-After: 60`) and a `WWW-Authenticate` challenge on the
webhook's 401. docs/openapi.json gained both, but INTERFACES.md's error paragraph still said every 503 was
"trouble that passes" with `Retry-After: 5`, listing the four codes it had before: a client written against it
retried a full database every 5 seconds, or treated an unlisted code as a bug."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from service.app import STORAGE_FULL_RETRY_AFTER_S
from service.routes import WEBHOOK_CHALLENGE

ROOT = Path(__file__).resolve().parents[2]
INTERFACES = (ROOT / "docs" / "INTERFACES.md").read_text(encoding="utf-8")
OPENAPI = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))


def _errors_paragraph() -> str:
    start = INTERFACES.index('Errors are `{"error": {"code", "message"}}`')
    return " ".join(INTERFACES[start:INTERFACES.index("\n\n", start)].split())


def _codes(node: Any) -> set[str]:
    """The error codes a response's schema names (`code`'s enum or const), however deep."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "code" and isinstance(value, dict) and ("enum" in value or "const" in value):
                found |= set(value.get("enum") or [value.get("const")])
            else:
                found |= _codes(value)
    elif isinstance(node, list):
        for value in node:
            found |= _codes(value)
    return found


def test_every_503_the_api_answers_is_in_the_interfaces_error_paragraph():
    answered = set().union(*(_codes(op["responses"]["503"]) for ops in OPENAPI["paths"].values()
                             for op in ops.values() if "503" in op.get("responses", {})))
    assert "storage_full" in answered  # docs/openapi.json is held to the code (test_review18_api_openapi_*)
    paragraph = _errors_paragraph()
    named = set(re.findall(r"`([a-z_]+)`", paragraph))
    assert answered - named == set(), f"name these 503 codes in INTERFACES.md's error paragraph: {paragraph}"


def test_the_interfaces_give_a_full_databases_retry_after_and_what_was_kept():
    paragraph = _errors_paragraph()
    said = paragraph[paragraph.index("`storage_full`"):]
    assert f"`Retry-After: {STORAGE_FULL_RETRY_AFTER_S}`" in said, said
    assert "nothing of it was kept" in said, said


def test_the_interfaces_give_the_challenge_of_a_refused_webhook():
    assert f"`WWW-Authenticate: {WEBHOOK_CHALLENGE}`" in " ".join(INTERFACES.split())
