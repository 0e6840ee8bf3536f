"""goldgate's own JSON log lines (the stack host's, the emulators'): each call is one line valid against schema v1,
whatever its caller passed, and no secret or URL signature reaches the file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest

from goldgate.logs import JsonLogger

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs/logging-schema-v1.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
SIG = "0f" * 32
TOKEN = "tok-" + "s3cr3t" * 6


def _lines(call) -> list[dict]:
    out = io.StringIO()
    call(JsonLogger("orchestrator", out, secrets=[TOKEN], stack="staging", workflow_version="2026.11.0"))
    return [json.loads(text) for text in out.getvalue().splitlines()]


@pytest.mark.parametrize("call", [
    # the stack host's failure lines carry an exception's text, of any length
    lambda log: log.error("stack.failed", error={"type": "RuntimeError", "message": "x" * 9000}),
    lambda log: log.error("stack.redeploy_failed", message="OSError: " + "p/" * 3000, data={"generation": 2}),
    lambda log: log.info("stack.ready", worker_image_tag="registry.example/" + "r" * 300 + "@sha256:" + "a" * 64),
    lambda log: log.error("runpod_emulator.tick_failed", error="KeyError: 'id'"),
    lambda log: log.info("runpod_emulator.started", base_url="http://127.0.0.1:1", logs_dir="/tmp/logs"),
    lambda log: log.warning("http_protocol_error", message="bad request line\n'GET /\\x1b[2J'", reason="r" * 500),
], ids=["long error message", "long message", "long image tag", "error as text", "fields off the schema",
        "newline and long reason"])
def test_every_call_is_one_schema_v1_line(call) -> None:
    [line] = _lines(call)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message[:120]}" for e in VALIDATOR.iter_errors(line)]
    assert errors == []


def test_fields_off_the_schema_are_kept_under_data() -> None:
    [line] = _lines(lambda log: log.info("runpod_emulator.started", base_url="http://127.0.0.1:1",
                                         data={"workers": 2}))
    assert line["data"] == {"workers": 2, "base_url": "http://127.0.0.1:1"}


def test_an_error_given_as_text_keeps_its_text() -> None:
    [line] = _lines(lambda log: log.error("runpod_emulator.tick_failed", error="KeyError: 'id'"))
    assert line["error"]["message"] == "KeyError: 'id'"


def test_url_signatures_and_secrets_are_masked_everywhere_in_a_line() -> None:
    url = f"http://127.0.0.1:8787/api/runpod/webhook?job=j1&sig={SIG}"
    [line] = _lines(lambda log: log.error(
        "stack.redeploy_failed", message=f"POST {url} refused", data={"url": url, "argv": ["--token", TOKEN]},
        error={"type": "HTTPError", "message": f"401 for {url} with Bearer {TOKEN}"}))
    text = json.dumps(line)
    assert SIG not in text and TOKEN not in text
    assert line["message"] == "POST http://127.0.0.1:8787/api/runpod/webhook?job=j1&sig=[redacted] refused"
    assert line["data"]["argv"] == ["--token", "[redacted]"]


def test_a_secret_across_the_length_cut_leaves_no_first_part() -> None:
    [line] = _lines(lambda log: log.error("stack.failed", message="x" * 3990 + TOKEN))
    assert TOKEN[:8] not in line["message"]
    assert len(line["message"]) <= 4000
