"""The Worker's entry over the stand-ins of its bindings, with the named clients' hashes split over CLIENT_TOKENS,
CLIENT_TOKENS_2 and CLIENT_TOKENS_3 (as a cloud stack of more clients than 5 KB holds declares them): a client in any
part is served as that client. A set the parts do not make (a client in two parts, a part that is not JSON or has a
bad entry, more than 100 clients in all) is refused as a bad CLIENT_TOKENS is: every client token answered 401, the
API token served, one `service.client_tokens_refused` line naming the part. Before, the entry read CLIENT_TOKENS
alone: a client in a further part was answered 401, and a bad further part went unsaid."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from service_testkit import check_log_lines
from test_review32_inputsvc_uploads import AUTH
from test_review33_ratelimit_runtimes import _cloud

from service import clients

ALICE = "cli-alice-0123456789abcdefghijklmnopqrstuv"
BOB = "cli-bob-0123456789abcdefghijklmnopqrstuvwxyz"
CAROL = "cli-carol-0123456789abcdefghijklmnopqrstuv"
HASHES = {name: hashlib.sha256(token.encode()).hexdigest() for name, token in
          (("alice", ALICE), ("bob", BOB), ("carol", CAROL))}


def _part(*names: str) -> str:
    return json.dumps({name: HASHES[name] for name in names}, separators=(",", ":"))


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _create(runtime: Any, headers: dict[str, str]) -> Any:
    body = json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}).encode()
    return runtime.call("POST", "/api/queue/create", body, {**headers, "content-type": "application/json"})


def _lines(runtime: Any) -> list[dict[str, Any]]:
    check_log_lines(list(runtime._log), extra_forbidden=(ALICE, BOB, CAROL, *HASHES.values()))
    return [json.loads(line) for line in runtime._log]


def test_a_client_in_any_part_is_served_as_that_client(request, tmp_path, log_lines):
    for cloud in _cloud(request, tmp_path, log_lines, CLIENT_TOKENS=_part("alice"), CLIENT_TOKENS_2=_part("bob"),
                        CLIENT_TOKENS_3=_part("carol")):
        assert [_create(cloud, _bearer(token)).status for token in (ALICE, BOB, CAROL)] == [202, 202, 202]
        assert _create(cloud, AUTH).status == 202
        lines = _lines(cloud)
        created = [x for x in lines if (x.get("http") or {}).get("path") == "/api/queue/create"]
        assert [(x.get("data") or {}).get("client") for x in created] == ["alice", "bob", "carol", None]
        assert not [x for x in lines if x["event"] == "service.client_tokens_refused"]


def test_a_stack_of_few_clients_has_no_further_part_and_is_served_as_before(request, tmp_path, log_lines):
    for cloud in _cloud(request, tmp_path, log_lines, CLIENT_TOKENS=_part("alice", "bob"), CLIENT_TOKENS_2=""):
        assert [_create(cloud, _bearer(token)).status for token in (ALICE, BOB, CAROL)] == [202, 202, 401]
        assert not [x for x in _lines(cloud) if x["event"] == "service.client_tokens_refused"]


# (the bindings, what the refusal line says, the bindings its data.binding names: the one to fix)
@pytest.mark.parametrize("parts, said, at_fault", [
    ({"CLIENT_TOKENS": _part("alice", "bob"), "CLIENT_TOKENS_2": _part("bob")},
     "Worker bindings CLIENT_TOKENS and CLIENT_TOKENS_2 both name client bob", "CLIENT_TOKENS, CLIENT_TOKENS_2"),
    ({"CLIENT_TOKENS": _part("alice"), "CLIENT_TOKENS_2": "not json"}, "Worker binding CLIENT_TOKENS_2 is not JSON",
     "CLIENT_TOKENS_2"),
    ({"CLIENT_TOKENS": _part("alice"), "CLIENT_TOKENS_3": json.dumps({"bob": BOB})},
     "Worker binding CLIENT_TOKENS_3: client bob's entry is not the sha256 of its token", "CLIENT_TOKENS_3"),
    ({"CLIENT_TOKENS": _part("alice"), "CLIENT_TOKENS_2": json.dumps({"bob": HASHES["alice"]})},
     "two clients have the same token", "CLIENT_TOKENS, CLIENT_TOKENS_2"),
    ({"CLIENT_TOKENS": json.dumps({f"a{n}": hashlib.sha256(f"a{n}".encode()).hexdigest() for n in range(60)}),
      "CLIENT_TOKENS_2": json.dumps({f"b{n}": hashlib.sha256(f"b{n}".encode()).hexdigest() for n in range(41)})},
     "name 101 clients in all; a stack takes at most 100", "CLIENT_TOKENS, CLIENT_TOKENS_2"),
    ({"CLIENT_TOKENS": "[]"}, "Worker binding CLIENT_TOKENS must be a JSON object", "CLIENT_TOKENS"),
])
def test_parts_that_make_no_set_of_clients_refuse_every_client_and_serve_the_api_token(request, tmp_path, log_lines,
                                                                                       parts, said, at_fault):
    for cloud in _cloud(request, tmp_path, log_lines, **parts):
        assert _create(cloud, AUTH).status == 202
        assert _create(cloud, _bearer(ALICE)).status == 401
        assert cloud.call("GET", "/api/workflows", b"", _bearer(ALICE)).status == 401
        (refusal,) = [x for x in _lines(cloud) if x["event"] == "service.client_tokens_refused"]
        assert said in refusal["message"] and refusal["level"] == "error", refusal["message"]
        assert refusal["data"]["binding"] == at_fault, refusal["data"]  # it said CLIENT_TOKENS whichever was at fault
        assert HASHES["alice"] not in json.dumps(refusal)


def test_every_clients_hash_is_compared_whichever_part_holds_it(monkeypatch):
    hashes = {f"client-{n:025d}": hashlib.sha256(f"token-{n}".encode()).hexdigest() for n in range(100)}
    parts = clients.binding_parts(hashes, 5_000)  # 100 names of 32 characters: 49, 49 and 2
    assert [len(json.loads(part)) for part in parts] == [49, 49, 2]
    merged = clients.hashes_from_bindings(dict(zip(clients.BINDINGS, parts, strict=True)))
    assert merged == hashes
    compared: list[bytes] = []
    real = clients.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(clients.hmac, "compare_digest", counting)
    for n in (0, 99, 100):  # a client in the first part, one in the last, and a token no client holds
        compared.clear()
        assert clients.client_token_used(merged, f"token-{n}".encode()) == (f"client-{n:025d}" if n < 100 else None)
        assert len(compared) == 100
