"""Rotating the webhook secret on a cloud stack: goldgate:webhookSecretPrevious (a Pulumi secret) becomes the API
Worker's WEBHOOK_SECRET_PREVIOUS binding, which still verifies the webhooks of jobs in flight and the result URLs
handed out (service/signing.py). Before, nothing fed it: a new webhookSecret answered every in-flight job's webhook
401 for good. The key is refused, by name and never by value, wherever the Worker would refuse it; once removed,
the next `pulumi up` declares no such binding, so the old secret stops verifying anything."""

from __future__ import annotations

import json

import pytest
from infra_harness import SECRETS, is_wire_secret, secret_lengths_the_program_and_worker_disagree_on
from previous_binding_support import bindings, deploy, plain_text_refusal, refusal

KEY = "goldgate:webhookSecretPrevious"
PREVIOUS = "whsec-previous-7d1e0b93c4a2"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_rotation_binds_the_previous_secret_and_its_end_removes_the_binding(stack, stacks_dir, tmp_path, bundle):
    during = deploy(stack, {**SECRETS, KEY: PREVIOUS}, stacks_dir, tmp_path, bundle)
    bound = bindings(during)
    assert bound["WEBHOOK_SECRET_PREVIOUS"] == {"type": "secret_text", "name": "WEBHOOK_SECRET_PREVIOUS",
                                                "text": PREVIOUS}
    assert bound["WEBHOOK_SECRET"]["text"] == SECRETS["goldgate:webhookSecret"]  # the current one signs on
    assert is_wire_secret(during.wire["bindings"])  # sent and stored encrypted, as the other secrets
    assert PREVIOUS not in json.dumps({k: v for k, v in during.wire.items() if k != "bindings"})

    # `pulumi config rm goldgate:webhookSecretPrevious` and `pulumi up`: the script is uploaded without it.
    after = deploy(stack, SECRETS, stacks_dir, tmp_path, bundle)
    assert "WEBHOOK_SECRET_PREVIOUS" not in bindings(after)
    assert set(bindings(after)) == set(bound) - {"WEBHOOK_SECRET_PREVIOUS"}


def test_a_blank_previous_secret_is_no_rotation(stacks_dir, tmp_path, bundle):
    # The Worker takes an empty binding for none; a blank config value declares none rather than an empty secret.
    script = deploy("staging", {**SECRETS, KEY: "  "}, stacks_dir, tmp_path, bundle)
    assert "WEBHOOK_SECRET_PREVIOUS" not in bindings(script)


@pytest.mark.parametrize(("value", "says"), [
    ("whsec-short-015", f"{KEY} is shorter than 16 characters"),
    (SECRETS["goldgate:webhookSecret"], f"{KEY} and goldgate:webhookSecret hold the same value"),
    (SECRETS["goldgate:apiToken"], f"goldgate:apiToken and {KEY} hold the same value"),
])
def test_a_previous_secret_the_api_worker_would_refuse_is_refused_without_echoing_it(value, says):
    said = refusal({**SECRETS, KEY: value})
    assert says in said and f"pulumi config rm {KEY} --stack staging" in said, said
    assert value not in said


def test_a_previous_secret_set_without_secret_is_refused_without_echoing_it():
    said = plain_text_refusal(KEY, PREVIOUS)
    assert f"{KEY} is stored in plain text" in said and "pulumi config set --secret" in said
    assert PREVIOUS not in said


def test_the_shortest_previous_secret_the_program_accepts_is_one_the_api_worker_accepts():
    assert secret_lengths_the_program_and_worker_disagree_on(KEY, "webhook_secret_previous", "p") == []
