"""Named client tokens on a cloud stack: goldgate:clientTokens (client name -> token, each leaf a Pulumi secret) becomes
the API Worker's one CLIENT_TOKENS binding, a secret holding JSON of each client's name -> the sha256 hex of its token:
the Worker never holds a client's token. A stack naming no client declares no such binding. A config the Worker could
not use is refused before anything is declared, naming the client and never its token."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from infra_harness import SECRETS, filled_stack_file, is_wire_secret, unwrap
from previous_binding_support import bindings, deploy, plain_text_refusal, refusal

from goldgate import spec as specs
from goldgate.errors import SpecError

KEY = "goldgate:clientTokens"
ALICE = "client-token-alice-0123456789abcdefghij"
BOB = "client-token-bob-0123456789abcdefghijkl"


def _clients(**tokens: str) -> dict[str, str]:
    return {**SECRETS, KEY: json.dumps(tokens)}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_clients_become_one_binding_of_their_hashes_and_none_once_removed(stack, stacks_dir, tmp_path, bundle):
    script = deploy(stack, _clients(alice=ALICE, bob=BOB), stacks_dir, tmp_path, bundle)
    bound = bindings(script)
    assert bound["CLIENT_TOKENS"]["type"] == "secret_text"
    assert json.loads(unwrap(bound["CLIENT_TOKENS"]["text"])) == {
        "alice": hashlib.sha256(ALICE.encode()).hexdigest(), "bob": hashlib.sha256(BOB.encode()).hexdigest()}
    assert is_wire_secret(script.wire["bindings"])
    wire = json.dumps(script.wire, default=str)
    assert ALICE not in wire and BOB not in wire  # the Worker never holds a client's token
    assert bound["API_TOKEN"]["text"] == SECRETS["goldgate:apiToken"]  # the operator's token is served on

    assert "CLIENT_TOKENS" not in bindings(deploy(stack, SECRETS, stacks_dir, tmp_path, bundle))
    assert "CLIENT_TOKENS" not in bindings(deploy(stack, _clients(), stacks_dir, tmp_path, bundle))


@pytest.mark.parametrize(("tokens", "says", "shown"), [
    ({"Alice": ALICE}, "names client 'Alice', which is not a client name", ALICE),
    ({"alice": "short-token"}, f"{KEY}.alice is not a token of at least 32 characters", "short-token"),
    ({"alice": ALICE + " x"}, f"{KEY}.alice is not a token", ALICE),
    ({"alice": 12345}, f"{KEY}.alice is not a token", "12345"),
    ({"alice": ALICE, "bob": ALICE}, f"{KEY}.bob and {KEY}.alice hold the same token", ALICE),
    ({f"c{n}": f"client-token-{n:04d}-0123456789abcdefghijkl" for n in range(101)}, "at most 100", "client-token-"),
])
def test_a_client_config_the_worker_could_not_use_is_refused_naming_the_client_never_its_token(tokens, says, shown):
    said = refusal({**SECRETS, KEY: json.dumps(tokens)})
    assert says in said, said
    assert shown not in said


@pytest.mark.parametrize("other", ["goldgate:apiToken", "goldgate:webhookSecret", "goldgate:apiTokenPrevious",
                                   "goldgate:webhookSecretPrevious"])
def test_a_client_token_equal_to_an_operator_secret_is_refused_naming_both_keys(other):
    value = "operator-secret-0123456789abcdefghijklmno"
    secrets = {**SECRETS, other: value, KEY: json.dumps({"alice": value})}
    said = refusal(secrets)
    assert f"{KEY}.alice holds the same value as {other}" in said and value not in said


def test_a_client_config_that_is_no_object_is_refused():
    said = refusal({**SECRETS, KEY: json.dumps(["alice", ALICE])})
    assert "must be an object of client name -> token" in said and ALICE not in said


def test_client_tokens_set_without_secret_are_refused_without_echoing_them():
    said = plain_text_refusal(KEY, json.dumps({"alice": ALICE}))
    assert f"{KEY} is stored in plain text" in said and ALICE not in said


def test_the_stack_file_takes_encrypted_client_tokens_and_refuses_a_plain_one(tmp_path):
    doc = filled_stack_file("staging")
    doc["config"][KEY] = {"alice": {"secure": "v1:abc"}, "bob": {"secure": "v1:def"}}
    path = tmp_path / "Pulumi.staging.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert specs.load_pulumi("staging", tmp_path).name == "staging"
    doc["config"][KEY]["bob"] = BOB
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError) as refused:
        specs.load_pulumi("staging", tmp_path)
    assert f"{KEY} is stored in plain text" in str(refused.value) and BOB not in str(refused.value)
