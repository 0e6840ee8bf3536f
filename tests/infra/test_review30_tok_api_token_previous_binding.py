"""Rotating the API token on a cloud stack: goldgate:apiTokenPrevious (a Pulumi secret) becomes the API Worker's
API_TOKEN_PREVIOUS binding, which the Worker still accepts as a bearer token, so clients holding the old token are
served while they move to the new one. Before, no such key existed (the stack file refused it as unknown) and a new
apiToken answered every client still holding the old one 401. The key is refused, by name and never by value,
wherever the Worker would refuse it; once removed, the next `pulumi up` declares no such binding."""

from __future__ import annotations

import json

import pytest
from infra_harness import SECRETS, is_wire_secret, secret_lengths_the_program_and_worker_disagree_on
from previous_binding_support import bindings, deploy, plain_text_refusal, refusal

KEY = "goldgate:apiTokenPrevious"
PREVIOUS = "api-token-previous-4c9e2a7d"
WHS_PREVIOUS = "whsec-previous-7d1e0b93c4a2"
SAME_AS_A_WEBHOOK_SECRET = f"{KEY} holds the same value as goldgate:webhookSecret or goldgate:webhookSecretPrevious"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_rotation_binds_the_previous_token_and_its_end_removes_the_binding(stack, stacks_dir, tmp_path, bundle):
    during = deploy(stack, {**SECRETS, KEY: PREVIOUS}, stacks_dir, tmp_path, bundle)
    bound = bindings(during)
    assert bound["API_TOKEN_PREVIOUS"] == {"type": "secret_text", "name": "API_TOKEN_PREVIOUS", "text": PREVIOUS}
    assert bound["API_TOKEN"]["text"] == SECRETS["goldgate:apiToken"]  # the current one is served on
    assert is_wire_secret(during.wire["bindings"])  # sent and stored encrypted, as the other secrets
    assert PREVIOUS not in json.dumps({k: v for k, v in during.wire.items() if k != "bindings"})

    # `pulumi config rm goldgate:apiTokenPrevious` and `pulumi up`: the script is uploaded without it.
    after = deploy(stack, SECRETS, stacks_dir, tmp_path, bundle)
    assert set(bindings(after)) == set(bound) - {"API_TOKEN_PREVIOUS"}


def test_a_blank_previous_token_is_no_rotation(stacks_dir, tmp_path, bundle):
    # The Worker takes an empty binding for none; a blank config value declares none rather than an empty secret.
    blank = deploy("staging", {**SECRETS, KEY: "  "}, stacks_dir, tmp_path, bundle)
    rotating = deploy("staging", {**SECRETS, KEY: PREVIOUS}, stacks_dir, tmp_path, bundle)
    assert set(bindings(rotating)) - set(bindings(blank)) == {"API_TOKEN_PREVIOUS"}


@pytest.mark.parametrize(("value", "says"), [
    ("api-token-short", f"{KEY} is shorter than 16 characters"),
    (SECRETS["goldgate:apiToken"], f"{KEY} and goldgate:apiToken hold the same value"),
    (SECRETS["goldgate:webhookSecret"], SAME_AS_A_WEBHOOK_SECRET),
    (WHS_PREVIOUS, SAME_AS_A_WEBHOOK_SECRET),
])
def test_a_previous_token_the_api_worker_would_refuse_is_refused_without_echoing_it(value, says):
    said = refusal({**SECRETS, "goldgate:webhookSecretPrevious": WHS_PREVIOUS, KEY: value})
    assert says in said and f"pulumi config rm {KEY} --stack staging" in said, said
    assert value not in said


def test_a_previous_token_set_without_secret_is_refused_without_echoing_it():
    said = plain_text_refusal(KEY, PREVIOUS)
    assert f"{KEY} is stored in plain text" in said and "pulumi config set --secret" in said
    assert PREVIOUS not in said


def test_the_shortest_previous_token_the_program_accepts_is_one_the_api_worker_accepts():
    assert secret_lengths_the_program_and_worker_disagree_on(KEY, "api_token_previous", "t") == []
