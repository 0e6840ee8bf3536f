"""A request's one log line keeps the highest level of the events folded into it: an error followed by a quieter
event is still an error line, which an operator's `level=error` filter finds. Every secret of the config is
masked."""

from __future__ import annotations

import json

from service_testkit import API_TOKEN, RUNPOD_KEY, S3_SECRET, WEBHOOK_SECRET, check_log_lines, make_config

from service.app import create_app
from service.logs import Logger, error_field


def _one_request(events: list[tuple[str, str]]) -> dict:
    lines: list[str] = []
    log = Logger(lines.append, stack="test")
    with log.request_line() as note:
        for level, event in events:
            log.log(level, event, reason=f"{event}_reason")
    log.write_request_line(note, http={"method": "POST", "path": "/api/runpod/webhook", "status": 200})
    check_log_lines(lines)
    [line] = lines
    return json.loads(line)


def test_an_error_followed_by_a_quieter_event_leaves_the_line_at_error():
    line = _one_request([("error", "webhook.refused"), ("info", "job.finished"), ("warning", "job.late")])
    assert line["level"] == "error"
    assert (line["event"], line["reason"]) == ("job.late", "job.late_reason")  # the last event names the line


def test_a_louder_later_event_raises_the_line_and_a_request_with_no_event_is_an_info_http_request():
    assert _one_request([("info", "job.created"), ("warning", "job.idempotency_key_kept")])["level"] == "warning"
    line = _one_request([])
    assert (line["level"], line["event"]) == ("info", "http.request")


def test_every_secret_of_the_service_config_is_masked_in_free_text(tmp_path):
    # The S3 secret reaches error texts (botocore quotes a request's signing material in some errors), and the
    # previous webhook secret signs for as long as a rotation lasts: each is masked as the API token is.
    previous = "whp-PreviousWebhookSecret-3c5e7a9b"
    config = make_config(webhook_secret_previous=previous)
    lines: list[str] = []
    app = create_app(config, db=None, store=None, runpod=None, log_sink=lines.append)
    for secret in (API_TOKEN, WEBHOOK_SECRET, RUNPOD_KEY, S3_SECRET, previous):
        app.log.error("test.leak", message=f"the store said: bad key {secret}",
                      error={"type": "ClientError", "message": f"signature of {secret} does not match"})
        assert secret not in lines[-1] and lines[-1].count("[redacted]") == 2, secret
    check_log_lines(lines, extra_forbidden=(previous,))


def test_an_exception_without_text_is_logged_by_its_type_not_an_empty_message():
    # asyncio's TimeoutError and many others carry no text: an empty message says nothing to the operator
    assert error_field(TimeoutError()) == {"type": "TimeoutError", "message": "TimeoutError"}
    assert error_field(ValueError("bad")) == {"type": "ValueError", "message": "bad"}
