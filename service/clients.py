"""Named client tokens: bearer tokens beside the API token, each naming the client that sends it.

The API token stays the operator's (and goldgate's own). Each client the operator adds has its own token, so one
runaway client is revoked alone, counts against its own rate limits, and the jobs it creates say who queued them
(jobs.client, the request line's `data.client`). The service never holds a client's token: its config carries
`client_tokens`, the client's name -> the sha256 (hex) of its token. A bearer that is not the API token is hashed
once and compared, in constant time, with every client's hash (no early exit): the answer's timing says nothing
about which client, or how many, there are.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

# A client's name: what the request lines, the jobs table and `goldgate cancel --client` carry; a file name locally.
NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}\Z")
NAME_RULE = "1 to 32 characters: lowercase letters, digits and '-', the first a letter"
MAX_CLIENTS = 100
# The shortest client token goldgate takes (the ones it makes are 43 characters of token_urlsafe(32)).
TOKEN_MIN_CHARS = 32
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")
# The Worker's secret_text bindings of the client hashes, in order. Cloudflare takes at most 5 KB in one (Workers
# platform limits, "Environment variable size"), and 100 clients of 32-character names take 10,201 bytes of compact
# JSON (102 a client): the hashes are split by name over as many as they need, 49 such clients to a binding, so three.
BINDINGS = ("CLIENT_TOKENS", "CLIENT_TOKENS_2", "CLIENT_TOKENS_3")


class ClientTokensError(ValueError):
    """The client hashes are not {name: 64 lowercase hex}: the message says what is wrong, never a hash; `bindings`,
    the Worker's client bindings at fault (none when the hashes came from elsewhere)."""

    def __init__(self, message: str, bindings: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.bindings = bindings


def token_hash(token: str) -> str:
    """The sha256 (hex) of a client token, as the service's config holds it."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def checked_hashes(raw: Any, where: str) -> dict[str, str]:
    """`raw` as the service takes client hashes: a JSON object of at most MAX_CLIENTS names, each to the 64-hex sha256
    of its token, no two the same. `where` names the source in the refusal (a config key, a binding)."""
    if not isinstance(raw, Mapping):
        raise ClientTokensError(f"{where} must be a JSON object of client name -> sha256 hex of its token, got "
                                f"{type(raw).__name__}")
    if len(raw) > MAX_CLIENTS:
        raise ClientTokensError(f"{where} names {len(raw)} clients; a stack takes at most {MAX_CLIENTS}")
    hashes: dict[str, str] = {}
    for name, digest in raw.items():
        if not isinstance(name, str) or not NAME.match(name):
            shown = repr(name)[:40] if isinstance(name, str) else type(name).__name__
            raise ClientTokensError(f"{where}: client name {shown} is not a client name ({NAME_RULE})")
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise ClientTokensError(f"{where}: client {name}'s entry is not the sha256 of its token (64 lowercase "
                                    "hex characters)")
        hashes[name] = digest
    if len(set(hashes.values())) != len(hashes):
        raise ClientTokensError(f"{where}: two clients have the same token: give each its own")
    return hashes


def hashes_from_binding(text: str, binding: str = BINDINGS[0]) -> dict[str, str]:
    """One of the Worker's client bindings (JSON text) as checked_hashes takes it."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise ClientTokensError(f"Worker binding {binding} is not JSON", (binding,)) from None
    try:
        return checked_hashes(raw, f"Worker binding {binding}")
    except ClientTokensError as exc:
        raise ClientTokensError(str(exc), (binding,)) from None


def hashes_from_bindings(texts: Mapping[str, str]) -> dict[str, str]:
    """The client hashes of every client binding present (binding name -> its JSON text), as one set: each part is
    checked as hashes_from_binding does, and a client named in two parts, two clients with one token or more than
    MAX_CLIENTS in all refuse the whole set, as a bad single binding does."""
    hashes: dict[str, str] = {}
    held_by: dict[str, str] = {}
    for binding, text in texts.items():
        for name, digest in hashes_from_binding(text, binding).items():
            if name in held_by:
                raise ClientTokensError(f"Worker bindings {held_by[name]} and {binding} both name client {name}: "
                                        "each client belongs in one", (held_by[name], binding))
            held_by[name] = binding
            hashes[name] = digest
    if len(texts) < 2:
        return hashes
    where, present = f"Worker bindings {', '.join(texts)}", tuple(texts)
    if len(hashes) > MAX_CLIENTS:
        raise ClientTokensError(f"{where} name {len(hashes)} clients in all; a stack takes at most {MAX_CLIENTS}",
                                present)
    try:
        return checked_hashes(hashes, where)  # two clients with one token, each in its own part
    except ClientTokensError as exc:
        raise ClientTokensError(str(exc), present) from None


def binding_parts(hashes: Mapping[str, str], max_bytes: int) -> list[str]:
    """`hashes` as the Worker's client bindings hold them: compact JSON objects, filled one after the other in name
    order up to `max_bytes` each. Split by name, the parts are the same for the same clients (no diff on an unchanged
    stack), and clients that fit one binding make exactly the one binding of them all they made before the split.
    No part is over max_bytes unless one client alone is (a name is at most 32 characters: 102 bytes)."""
    parts: list[dict[str, str]] = []
    for name in sorted(hashes):
        if parts and len(_compact({**parts[-1], name: hashes[name]})) <= max_bytes:
            parts[-1][name] = hashes[name]
        else:
            parts.append({name: hashes[name]})
    return [_compact(part) for part in parts]


def _compact(hashes: Mapping[str, str]) -> str:
    return json.dumps(hashes, sort_keys=True, separators=(",", ":"))


def client_token_used(hashes: Mapping[str, str], token: bytes) -> str | None:
    """The name of the client whose token is `token` (a bearer token's bytes), or None. Every client's hash is
    compared, whichever matches: the time taken is the same for a match, a miss and any client."""
    if not hashes:
        return None
    given = hashlib.sha256(token).hexdigest().encode()
    found = None
    for name, digest in hashes.items():
        if hmac.compare_digest(digest.encode(), given) and found is None:
            found = name
    return found
