"""A RunPod registry credential (the login RunPod pulls a private worker image with) as a Pulumi dynamic
resource, a thin layer over goldgate.runpod.

REST v2 offers POST, GET and DELETE on `/v2/registries` and no edit, so a new username or password is a
new credential: `diff` names the field that forces the replacement, and Pulumi's default order applies
(create the new credential, update the endpoint that names it, then delete the old one). A new API key
is an in-place update; another control plane (`api_base`) or name is a replacement.

Secrets: `username` and `password` are inputs only (Pulumi keeps its inputs encrypted as secrets). The
outputs never hold them: a salted PBKDF2 fingerprint of each (itself a secret output) is what `diff`
compares. Errors never show them: the client redacts them even when RunPod echoes them back.

Pulumi pickles the provider: it holds no state, and builds its client from the inputs each call.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi.dynamic as dyn

from goldgate.runpod import ControlPlaneClient, Registry, RegistryCredential
from infra.runpod_provider import confirm_gone, control_client, create_once

CREDENTIAL_FIELDS = ("username", "password")
# Another control plane (account) has never heard of the credential; a name cannot be edited.
REPLACE_FIELDS = ("api_base", "name")
SECRET_OUTPUTS = ["api_key", "username", "password", "username_fingerprint", "password_fingerprint"]
_ROUNDS = 200_000


def fingerprint(salt: str, field: str, value: str) -> str:
    """A salted, slow hash of one credential field: enough to tell a rotation, useless to recover the value."""
    return hashlib.pbkdf2_hmac("sha256", value.encode(), bytes.fromhex(salt) + field.encode(), _ROUNDS).hex()


def changed_fields(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """Which inputs differ: plain comparison for api_base/api_key/name, fingerprints for username/password."""
    changed = [f for f in ("api_base", "api_key", "name") if olds.get(f) != news.get(f)]
    salt = olds.get("salt")
    for field in CREDENTIAL_FIELDS:
        old, new = olds.get(f"{field}_fingerprint"), news.get(field)
        if not (isinstance(salt, str) and isinstance(old, str) and isinstance(new, str)
                and hmac.compare_digest(old, fingerprint(salt, field, new))):
            changed.append(field)  # also when the state has no fingerprint (an import): replace to be sure
    return changed


class RunPodRegistryCredentialProvider(dyn.ResourceProvider):
    """CRUD of one registry credential over goldgate.runpod.ControlPlaneClient."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        failures = []
        for field, how in (("name", "a name for the credential (StackNames derives it)"),
                           ("username", "goldgate:registryUsername (pulumi config set --secret)"),
                           ("password", "goldgate:registryPassword (pulumi config set --secret)")):
            value = news.get(field)
            if value is not None and not (isinstance(value, str) and value):  # None: not yet known (preview)
                failures.append(dyn.CheckFailure(field, f"{field} must be a non-empty string: set {how}"))
        return dyn.CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        # A fresh suffix per credential: old and new coexist during a rotation, whatever RunPod thinks of
        # duplicate names.
        credential = RegistryCredential(f"{props['name']}-{secrets.token_hex(3)}", props["username"], props["password"])
        with _client(props) as rp:
            registry = create_once(lambda: rp.create_registry(credential),
                                   lambda: [(r.id, r) for r in rp.list_registries() if r.name == credential.name],
                                   "registry credential", credential.name, props)
        return dyn.CreateResult(id_=registry.id, outs=_outs(props, registry, salt=secrets.token_hex(16)))

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        with _client(props) as rp:
            registry = rp.find_registry(id_)
            if registry is None:  # deleted outside Pulumi: an empty id tells the engine it is gone
                confirm_gone(lambda: [r.id for r in rp.list_registries()], id_, "registry credential", props)
                return dyn.ReadResult(id_="", outs={})
        return dyn.ReadResult(id_=id_, outs={**props, "registry_id": registry.id, "registry_name": registry.name})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        changed = changed_fields(olds, news)
        replaces = [f for f in changed if f in REPLACE_FIELDS or f in CREDENTIAL_FIELDS]
        return dyn.DiffResult(changes=bool(changed), replaces=replaces,
                              stables=["registry_id"] if not replaces else [], delete_before_replace=False)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        # Only the API key changed (everything else replaces): check the new key can see the credential.
        with _client(news) as rp:
            registry = rp.get_registry(id_)
        return dyn.UpdateResult(outs=_outs(news, registry, salt=olds["salt"]))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with _client(props) as rp:
            rp.delete_registry(id_, missing_ok=True)


def _client(props: Mapping[str, Any]) -> ControlPlaneClient:
    return control_client(props, "registry credential", "endpoint.manage_registry_credential")


def _outs(props: Mapping[str, Any], registry: Registry, *, salt: str) -> dict[str, Any]:
    """The state: never the username or password, only their fingerprints."""
    outs = {k: v for k, v in props.items() if k not in CREDENTIAL_FIELDS}
    outs.update({"registry_id": registry.id, "registry_name": registry.name, "salt": salt})
    outs.update({f"{f}_fingerprint": fingerprint(salt, f, props[f]) for f in CREDENTIAL_FIELDS})
    return outs


class RunPodRegistryCredential(dyn.Resource, module="runpod", name="RegistryCredential"):
    """A RunPod container-registry credential managed by goldgate (endpoint.manage_registry_credential)."""

    registry_id: pulumi.Output[str]
    registry_name: pulumi.Output[str]

    def __init__(self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        bag = dict(props)
        for key in ("api_key", *CREDENTIAL_FIELDS):
            bag[key] = pulumi.Output.secret(bag[key])
        bag.update({"registry_id": None, "registry_name": None, "salt": None,
                    "username_fingerprint": None, "password_fingerprint": None})
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS))
        super().__init__(RunPodRegistryCredentialProvider(), name, bag, opts)
