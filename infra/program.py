"""The Pulumi program for one cloud stack: config -> StackSpec -> guardrails -> components -> exports.

`run` is the whole program; `infra/__main__.py` calls it with the running stack's config, and the
tests call it under Pulumi mocks. Guardrails run before any resource is declared.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_cloudflare as cloudflare

from goldgate.bounded_http import bearer_token
from goldgate.errors import SpecError
from goldgate.migrations import MIGRATIONS_DIR
from goldgate.spec import (
    CLIENT_TOKENS_KEY,
    CLOUDFLARE_API_BASE_CONFIG_KEY,
    CONFIG_NAMESPACE,
    PREVIOUS_API_TOKEN_KEY,
    PREVIOUS_WEBHOOK_SECRET_KEY,
    R2_READ_GROUP_CONFIG_KEY,
    R2_WRITE_GROUP_CONFIG_KEY,
    REGISTRY_SECRET_KEYS,
    SPEC_CONFIG_KEY,
    STACK_SECRET_KEYS,
    STACKS_DIR,
    StackSpec,
    checked_cloudflare_api_base,
    from_pulumi_config,
    set_secret_command,
)
from infra.components import Api, ApiArgs, GpuEndpoint, GpuEndpointArgs, Storage, StorageArgs
from infra.components.api import check_exposure
from infra.components.gpu import RegistryLogin
from infra.components.storage import R2_BUCKET_ITEM_READ, R2_BUCKET_ITEM_WRITE
from infra.d1_migrations_provider import DEFAULT_CLOUDFLARE_API, read_migrations
from infra.names import StackNames
from infra.policies import GuardrailError, check_stacks, copied_secret_violations, load_cloud_stacks
from infra.worker_bundle import SERVICE_DIR, WORKFLOWS_DIR, WorkerBundle, collect, image_workflows_dir
from service.clients import BINDINGS as CLIENT_TOKEN_BINDINGS
from service.clients import MAX_CLIENTS, binding_parts, token_hash
from service.clients import NAME as CLIENT_NAME
from service.clients import NAME_RULE as CLIENT_NAME_RULE
from service.clients import TOKEN_MIN_CHARS as CLIENT_TOKEN_MIN_CHARS
from service.config import (
    CURRENT_TOO_SHORT,
    PREVIOUS_IS_API_TOKEN,
    PREVIOUS_IS_CURRENT,
    PREVIOUS_TOO_SHORT,
    TOKEN_PREVIOUS_IS_CURRENT,
    TOKEN_PREVIOUS_IS_WEBHOOK_SECRET,
    current_secrets_problem,
    previous_secret_problem,
    previous_token_problem,
)

# The config keys are goldgate.spec's (CONFIG_KEYS, which every stack file is held to): the four secrets every stack
# sets, by StackSecrets field; the registry login (REGISTRY_SECRET_KEYS); and PREVIOUS_WEBHOOK_SECRET_KEY, set only
# while the webhook secret is rotated (docs/RUNBOOK.md): the one before it, which the API Worker still accepts for the
# webhooks of jobs in flight and the result URLs handed out; PREVIOUS_API_TOKEN_KEY likewise while the API token is
# rotated: the one before it, which clients still holding it may send. Unset (or blank): no binding at all.
SECRET_KEYS = STACK_SECRET_KEYS
_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>")
_ZERO_DIGEST = "@sha256:" + "0" * 64
# The API Worker refuses an API token or webhook secret shorter than SECRET_MIN_CHARS, or the two equal, at its
# first request (service/config.py): refused here, before a deploy replaces a working Worker with one that answers
# 500 to everything. Each by its service config key.
API_SECRET_KEYS = {field: SECRET_KEYS[field] for field in ("api_token", "webhook_secret")}


@dataclass(frozen=True)
class StackSecrets:
    """The stack's secrets, as Pulumi secret Outputs (never in the spec, never logged)."""

    runpod_api_key: pulumi.Input[str]
    webhook_secret: pulumi.Input[str]
    api_token: pulumi.Input[str]
    cloudflare_api_token: pulumi.Input[str]
    registry_username: pulumi.Input[str] | None = None  # set exactly when goldgate manages the registry credential
    registry_password: pulumi.Input[str] | None = None
    webhook_secret_previous: pulumi.Input[str] | None = None  # set only while the webhook secret is rotated
    api_token_previous: pulumi.Input[str] | None = None  # set only while the API token is rotated
    # The named clients' hashes as the API Worker's CLIENT_TOKENS bindings hold them (JSON {name: sha256 hex}, one
    # part a binding: CLIENT_TOKENS, CLIENT_TOKENS_2, ...), never a token; None: the stack names no client.
    client_tokens: Sequence[pulumi.Input[str]] | None = None

    def registry_login(self) -> RegistryLogin | None:
        if self.registry_username is None or self.registry_password is None:
            return None
        return RegistryLogin(self.registry_username, self.registry_password)


@dataclass(frozen=True)
class ProgramSettings:
    """Non-secret knobs that are not part of a stack's shape (defaults suit every real deployment)."""

    r2_write_permission_group_id: str = R2_BUCKET_ITEM_WRITE
    r2_read_permission_group_id: str = R2_BUCKET_ITEM_READ
    cloudflare_api_base: str = DEFAULT_CLOUDFLARE_API
    stacks_dir: Path = STACKS_DIR
    service_dir: Path = SERVICE_DIR
    workflows_dir: Path = WORKFLOWS_DIR
    migrations_dir: Path = MIGRATIONS_DIR


@dataclass(frozen=True)
class StackOutputs:
    """What a stack exports (also returned to tests, which assert on the Outputs)."""

    api_url: pulumi.Input[str]
    endpoint_id: pulumi.Output[str]
    endpoint_base: pulumi.Output[str]
    bucket: pulumi.Output[str]
    d1_id: pulumi.Output[str]
    image: str
    workflow_version: str
    registry_credential_id: pulumi.Input[str] | None
    r2_access_key_id: pulumi.Output[str]
    r2_secret_access_key: pulumi.Output[str]
    storage: Storage
    gpu: GpuEndpoint
    api: Api

    def exports(self) -> dict[str, Any]:
        return {"api_url": self.api_url, "endpoint_id": self.endpoint_id, "endpoint_base": self.endpoint_base,
                "bucket": self.bucket, "d1_id": self.d1_id, "image": self.image,
                "workflow_version": self.workflow_version, "registry_credential_id": self.registry_credential_id,
                "r2_access_key_id": self.r2_access_key_id,
                "r2_secret_access_key": self.r2_secret_access_key,
                # The DR drill's bucket and credentials (docs/D1_DISASTER_RECOVERY.md); the workers never get them.
                "backup_bucket": self.storage.backup_bucket_name,
                "backup_r2_access_key_id": self.storage.backup_r2_access_key_id,
                "backup_r2_secret_access_key": self.storage.backup_r2_secret_access_key}


def read_config(stack: str) -> tuple[StackSpec, StackSecrets, ProgramSettings]:
    """The running stack's spec, secrets and settings from `pulumi.Config('goldgate')`."""
    config = pulumi.Config(CONFIG_NAMESPACE)
    spec = from_pulumi_config(stack, config.require_object(SPEC_CONFIG_KEY))
    missing = [key for key in SECRET_KEYS.values() if not (config.get(key) or "").strip()]
    if missing:
        raise SpecError(unset_secrets_message(stack, missing))
    refuse_plain_secrets(stack, SECRET_KEYS.values())
    refuse_current_secrets(stack, config)
    previous = previous_webhook_secret(stack, config)
    previous_token = previous_api_token(stack, config)
    clients = client_token_hashes(stack, config)
    cloudflare_api_base = checked_cloudflare_api_base(config.get(CLOUDFLARE_API_BASE_CONFIG_KEY), f"stack {stack}")
    secrets = StackSecrets(**{field: config.require_secret(key) for field, key in SECRET_KEYS.items()},
                           **registry_secrets(stack, spec, config), webhook_secret_previous=previous,
                           api_token_previous=previous_token, client_tokens=clients)
    settings = ProgramSettings(
        r2_write_permission_group_id=config.get(R2_WRITE_GROUP_CONFIG_KEY) or R2_BUCKET_ITEM_WRITE,
        r2_read_permission_group_id=config.get(R2_READ_GROUP_CONFIG_KEY) or R2_BUCKET_ITEM_READ,
        cloudflare_api_base=cloudflare_api_base, workflows_dir=image_workflows_dir(stack, spec.image))
    return spec, secrets, settings


def unset_secrets_message(stack: str, keys: Sequence[str]) -> str:
    """The refusal of a stack whose secrets `keys` are unset, with the whole command that sets each. The stack files
    ship without them: a `secure:` placeholder there is no ciphertext, and the Pulumi CLI, which decrypts every
    `secure:` value before it starts the program, would fail on it with its own error, never reaching this one."""
    one = len(keys) == 1
    named = ", ".join(f"{CONFIG_NAMESPACE}:{key}" for key in keys)
    return (f"stack {stack}: {'secret' if one else 'secrets'} {named} {'is' if one else 'are'} not set (or empty). "
            f"Set {'it' if one else 'each'} encrypted, the value piped in (docs/CLOUD.md, \"Configure a stack\", "
            "step 3):\n  " + "\n  ".join(set_secret_command(key, stack) for key in keys))


def refuse_current_secrets(stack: str, config: pulumi.Config) -> None:
    """goldgate:apiToken and goldgate:webhookSecret, refused by their keys, never their values nor lengths, wherever
    the API Worker would refuse them at its first request (service/config.py's own rule)."""
    problem = current_secrets_problem(config.get(API_SECRET_KEYS["api_token"]) or "",
                                      config.get(API_SECRET_KEYS["webhook_secret"]) or "")
    if problem is None:
        return
    keys, clause = problem
    named = [f"{CONFIG_NAMESPACE}:{API_SECRET_KEYS[key]}" for key in keys]
    if clause == CURRENT_TOO_SHORT:
        raise SpecError(f"stack {stack}: {' and '.join(named)} {'is' if len(named) == 1 else 'are each'} {clause}, "
                        "which the API Worker refuses: set a long "
                        f"random value, e.g. `openssl rand -hex 32 | pulumi config set --secret "
                        f"{CONFIG_NAMESPACE}:<key> --stack {stack}`")
    raise SpecError(f"stack {stack}: {' and '.join(named)} hold {clause}, which the API Worker refuses (a client "
                    "holding the token could sign RunPod's outcomes and result URLs): give each its own, e.g. "
                    f"`openssl rand -hex 32 | pulumi config set --secret {CONFIG_NAMESPACE}:webhookSecret "
                    f"--stack {stack}`")


def previous_webhook_secret(stack: str, config: pulumi.Config) -> pulumi.Output[str] | None:
    """goldgate:webhookSecretPrevious when a rotation is under way (set, not blank), refused by its key, never its
    value, wherever the API Worker would refuse it at its first request (service/config.py)."""
    key = f"{CONFIG_NAMESPACE}:{PREVIOUS_WEBHOOK_SECRET_KEY}"
    return _previous_secret(
        stack, config, PREVIOUS_WEBHOOK_SECRET_KEY, "webhook_secret",
        lambda value: previous_secret_problem(value, config.get(API_SECRET_KEYS["webhook_secret"]) or "",
                                              config.get(API_SECRET_KEYS["api_token"]) or ""),
        PREVIOUS_IS_CURRENT, PREVIOUS_IS_API_TOKEN, f"{CONFIG_NAMESPACE}:apiToken and {key} hold the same value",
        "the token")


def previous_api_token(stack: str, config: pulumi.Config) -> pulumi.Output[str] | None:
    """goldgate:apiTokenPrevious when the API token is rotated (set, not blank), refused by its key, never its value,
    wherever the API Worker would refuse it at its first request (service/config.py)."""
    def problem(value: str) -> str | None:
        webhook_secrets = (config.get(API_SECRET_KEYS["webhook_secret"]) or "",
                           config.get(PREVIOUS_WEBHOOK_SECRET_KEY) or "")
        return previous_token_problem(value, config.get(API_SECRET_KEYS["api_token"]) or "", webhook_secrets)
    key = f"{CONFIG_NAMESPACE}:{PREVIOUS_API_TOKEN_KEY}"
    return _previous_secret(
        stack, config, PREVIOUS_API_TOKEN_KEY, "api_token", problem, TOKEN_PREVIOUS_IS_CURRENT,
        TOKEN_PREVIOUS_IS_WEBHOOK_SECRET, f"{key} holds the same value as {CONFIG_NAMESPACE}:webhookSecret or "
        f"{CONFIG_NAMESPACE}:{PREVIOUS_WEBHOOK_SECRET_KEY}", "the old token")


# What the refusals of a rotated secret call it, by the StackSecrets field of the secret it was before.
_ROTATED_WORDS = {"webhook_secret": ("webhook secret", "secret"), "api_token": ("API token", "token")}


def _previous_secret(stack: str, config: pulumi.Config, previous_key: str, current_field: str,
                     problem_of: Callable[[str], str | None], is_current: str, is_other: str, other_clash: str,
                     holder: str) -> pulumi.Output[str] | None:
    """The rotated secret `previous_key` (the old value of `current_field`'s key) when set, not blank. `problem_of` is
    the API Worker's own rule for it (service/config.py), whose clauses are PREVIOUS_TOO_SHORT, `is_current` and
    `is_other` (`other_clash` says which secret of the other kind it equals, so `holder`, a client, could sign): each
    is refused by its key, never its value."""
    value = config.get(previous_key)
    if not (value or "").strip():  # `pulumi config rm` is the way out; a blank value is taken for the same
        return None
    key = f"{CONFIG_NAMESPACE}:{previous_key}"
    refuse_plain_secrets(stack, [previous_key])
    out_of_rotation = f"or `pulumi config rm {key} --stack {stack}` if no rotation is under way"
    what, short = _ROTATED_WORDS[current_field]
    current = f"{CONFIG_NAMESPACE}:{API_SECRET_KEYS[current_field]}"
    problem = problem_of(value)
    if problem == PREVIOUS_TOO_SHORT:  # never the value, nor its length
        raise SpecError(f"stack {stack}: {key} {problem}, which the API Worker refuses: it holds the {what} the "
                        f"stack used before ({current}'s old value), {out_of_rotation}")
    if problem == is_current:
        raise SpecError(f"stack {stack}: {key} and {current} hold the same value, which the API Worker refuses: to "
                        f"rotate, set {key} to the old {short} and {current} to a new one (`openssl rand -hex 32 | "
                        f"pulumi config set --secret {current} --stack {stack}`), {out_of_rotation}")
    if problem == is_other:
        raise SpecError(f"stack {stack}: {other_clash}, which the API Worker refuses (a client holding {holder} could "
                        f"sign RunPod's outcomes and result URLs): {key} holds the {what} the stack used before, "
                        f"{out_of_rotation}")
    return config.require_secret(previous_key)


# Cloudflare's limit on one Worker variable or secret (Workers platform limits, "Environment variable size": 5 KB),
# kept a little under 5 KiB: JSON of {name: sha256 hex} takes 70 bytes and the name's a client, so one binding holds
# about 68 clients of 3-letter names and 49 of 32-letter ones; the rest go on in CLIENT_TOKENS_2 and CLIENT_TOKENS_3
# (service/clients.py BINDINGS), which hold the service's 100 clients whatever their names.
CLIENT_TOKENS_MAX_BYTES = 5_000


def client_token_hashes(stack: str, config: pulumi.Config) -> tuple[pulumi.Output[str], ...] | None:
    """goldgate:clientTokens (client name -> token) as the API Worker's CLIENT_TOKENS bindings take it: JSON of each
    name -> the sha256 hex of its token, split by name into parts of at most CLIENT_TOKENS_MAX_BYTES, each a secret
    (clients that fit one make the one CLIENT_TOKENS binding they always did). Refused before anything is declared,
    naming the client and never its token: a bad name, a token shorter than 32 characters (or one no Authorization
    header carries), two clients with one token, one equal to the API token or a webhook secret (current or
    previous), more than 100 clients. None when it is unset or names no client: the Worker then has no such
    binding."""
    raw = config.get(CLIENT_TOKENS_KEY)
    if raw is None or not raw.strip():
        return None
    key = f"{CONFIG_NAMESPACE}:{CLIENT_TOKENS_KEY}"
    how = f"`pulumi config set --secret --path '{key}.<name>' --stack {stack}`"
    try:
        tokens = json.loads(raw)
    except ValueError:
        tokens = None
    # `{}`, what `pulumi config rm --path` leaves once the last client is removed, holds no secure value, so pulumi
    # hands it over as plain config: no client, and nothing to refuse as a secret in plain text
    if tokens == {}:
        return None
    refuse_plain_secrets(stack, [CLIENT_TOKENS_KEY])
    if not isinstance(tokens, dict):
        raise SpecError(f"stack {stack}: {key} must be an object of client name -> token: set each client with {how}")
    if len(tokens) > MAX_CLIENTS:
        raise SpecError(f"stack {stack}: {key} names {len(tokens)} clients; a stack takes at most {MAX_CLIENTS}: "
                        f"remove those no longer used (`pulumi config rm --path '{key}.<name>' --stack {stack}`)")
    operator = {f"{CONFIG_NAMESPACE}:{name}": config.get(name) or "" for name in (
        API_SECRET_KEYS["api_token"], API_SECRET_KEYS["webhook_secret"], PREVIOUS_API_TOKEN_KEY,
        PREVIOUS_WEBHOOK_SECRET_KEY)}
    hashes: dict[str, str] = {}
    for name, token in tokens.items():
        if not CLIENT_NAME.match(name):
            raise SpecError(f"stack {stack}: {key} names client {name[:40]!r}, which is not a client name "
                            f"({CLIENT_NAME_RULE}): `pulumi config rm --path` it and set it under another name")
        fix = (f"set a new one: `openssl rand -hex 32 | pulumi config set --secret --path '{key}.{name}' "
               f"--stack {stack}`")
        value = bearer_token(token) if isinstance(token, str) else None
        if not value or len(value) < CLIENT_TOKEN_MIN_CHARS:  # never the value, nor its length
            raise SpecError(f"stack {stack}: {key}.{name} is not a token of at least {CLIENT_TOKEN_MIN_CHARS} "
                            f"characters on one line, which the API Worker would never match: {fix}")
        for other, secret in operator.items():
            if secret and hmac.compare_digest(value.encode(), secret.encode()):
                raise SpecError(f"stack {stack}: {key}.{name} holds the same value as {other}: a client must have a "
                                f"token of its own; {fix}")
        digest = token_hash(value)
        same = next((other for other, held in hashes.items() if held == digest), None)
        if same is not None:
            raise SpecError(f"stack {stack}: {key}.{name} and {key}.{same} hold the same token: give each client its "
                            f"own; {fix}")
        hashes[name] = digest
    parts = binding_parts(hashes, CLIENT_TOKENS_MAX_BYTES)
    # Cannot happen within MAX_CLIENTS (100 names of 32 characters make 3 parts): kept should either limit move, as
    # Cloudflare would refuse the script's upload mid-deploy, and the Worker reads no part past the last binding.
    if len(parts) > len(CLIENT_TOKEN_BINDINGS) or max(map(len, parts)) > CLIENT_TOKENS_MAX_BYTES:  # ASCII: 1 byte each
        raise SpecError(f"stack {stack}: {key} names {len(hashes)} clients, whose hashes take {len(parts)} parts of "
                        f"up to {CLIENT_TOKENS_MAX_BYTES:,} bytes, more than the {len(CLIENT_TOKEN_BINDINGS)} bindings "
                        f"the API Worker reads ({', '.join(CLIENT_TOKEN_BINDINGS)}): remove those no longer used "
                        f"(`pulumi config rm --path '{key}.<name>' --stack {stack}`) or give them shorter names")
    return tuple(pulumi.Output.secret(part) for part in parts)


def registry_secrets(stack: str, spec: StackSpec, config: pulumi.Config) -> dict[str, pulumi.Output[str]]:
    """The registry login for a managed credential; refuses every half-configured or contradictory setup."""
    # `get`, not `get_secret`: only whether each is set, so no secret Output is made that nothing would use.
    given = [key for key in REGISTRY_SECRET_KEYS.values() if config.get(key) is not None]
    named = ", ".join(f"{CONFIG_NAMESPACE}:{k}" for k in given)
    endpoint = spec.endpoint
    if endpoint.registry_credential_id is not None and given:
        raise SpecError(f"stack {stack}: goldgate:spec.endpoint.registry_credential_id is set and so is {named}: use "
                        "the existing credential or let goldgate manage one, not both (remove the id, or "
                        f"`pulumi config rm` the secret(s) --stack {stack})")
    if not endpoint.manage_registry_credential:
        if given:
            raise SpecError(f"stack {stack}: {named} is set but goldgate:spec.endpoint.manage_registry_credential is "
                            "not true, so nothing would use it: set it to true, or `pulumi config rm` the secret(s) "
                            f"--stack {stack}")
        return {}
    missing = [key for key in REGISTRY_SECRET_KEYS.values() if key not in given]
    if missing:
        raise SpecError(f"stack {stack}: goldgate:spec.endpoint.manage_registry_credential is true but "
                        f"{', '.join(CONFIG_NAMESPACE + ':' + k for k in missing)} is not set: set it encrypted, "
                        "the value piped in (docs/CLOUD.md, \"Private registry\"):\n  "
                        + "\n  ".join(set_secret_command(key, stack) for key in missing))
    refuse_plain_secrets(stack, given)
    return {field: config.require_secret(key) for field, key in REGISTRY_SECRET_KEYS.items()}


def refuse_plain_secrets(stack: str, keys: Iterable[str]) -> None:
    """A secret set without `--secret` sits in plain text in stacks/Pulumi.<stack>.yaml, which is committed."""
    plain = [key for key in keys if not pulumi.runtime.is_config_secret(f"{CONFIG_NAMESPACE}:{key}")]
    if plain:
        # The engine says a value is no secret, not where it came from: the stack file, or a Pulumi ESC environment's
        # `pulumiConfig` (a value there is a secret only under `fn::secret`).
        raise SpecError(f"stack {stack}: {', '.join(CONFIG_NAMESPACE + ':' + k for k in plain)} is stored in plain "
                        "text, in the stack file or in a Pulumi ESC environment it imports: set it again with "
                        "`pulumi config set --secret`, or in the environment under `fn::secret` (and rotate it if "
                        "the file or the environment was shared)")


def placeholders_in(value: Any, where: str = "goldgate:spec") -> list[str]:
    """Every `<PLACEHOLDER>` (or all-zero digest) still in the spec: the stack file was never filled in."""
    found: list[str] = []
    if isinstance(value, str):
        if _PLACEHOLDER.search(value) or _ZERO_DIGEST in value:
            found.append(f"{where} = {value!r}")
    elif is_dataclass(value):
        for f in fields(value):
            found += placeholders_in(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            found += placeholders_in(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found += placeholders_in(v, f"{where}[{i}]")
    return found


def first_image_pending(spec: StackSpec) -> str | None:
    """How the stack gets its first image, while `goldgate:spec.image` is still the shipped all-zero digest (else
    None). A preview goes through, saying so: it shows what the stack declares before any release. An `up` is refused
    with this: PROD's image comes only from `goldgate promote`, which pins a digest that passed the golden tests on
    STAGING (never one pasted in by hand, which would skip that gate); STAGING's from `goldgate deploy`."""
    image = spec.image or ""
    if not image.endswith(_ZERO_DIGEST) or _PLACEHOLDER.search(image):
        return None
    if spec.role == "prod":
        return ("a PROD stack's image is set only by `goldgate promote --target cloud`, which pins a digest that "
                "passed the golden tests on STAGING and runs this `pulumi up` itself; never set it by hand "
                "(docs/CLOUD.md, \"PROD\")")
    return (f"its first image comes from `goldgate deploy {spec.name} --target cloud --image <repo@sha256:...>` (the "
            f"ref `goldgate build --repo REPO` printed), which pins it and runs this `pulumi up` itself; or pin a digest "
            f"you pushed with `pulumi config set --path goldgate:spec.image <repo@sha256:...> --stack {spec.name}` "
            "(docs/CLOUD.md, \"Configure a stack\")")


def preflight(spec: StackSpec, settings: ProgramSettings) -> None:
    """Refuse, before any resource is declared, a spec with placeholders, one the vendors or the API Worker would
    refuse once deployed, or one breaking a guardrail."""
    if spec.cloud is None or spec.image is None:
        raise SpecError(f"stack {spec.name}: a cloud stack needs goldgate:spec.cloud and goldgate:spec.image")
    first = first_image_pending(spec)
    # The all-zero pin is not the operator's to fill in: goldgate's release sets it (first_image_pending).
    left = [p for p in placeholders_in(spec) if not (first and p.startswith("goldgate:spec.image = "))]
    if left:
        raise SpecError(f"stack {spec.name}: the stack file still holds placeholders; replace them (docs/CLOUD.md):"
                        "\n  - " + "\n  - ".join(left)
                        + (f"\n(goldgate:spec.image's all-zero digest is not one of them: {first})" if first else ""))
    if first and pulumi.runtime.is_dry_run():
        pulumi.log.warn(f"stack {spec.name}: previewed with goldgate:spec.image still the all-zero digest the stack "
                        f"file ships with; `pulumi up` refuses it: {first}")
    elif first:
        raise SpecError(f"stack {spec.name}: goldgate:spec.image is still the all-zero digest the stack file ships "
                        f"with, which no worker can pull: {first}")
    check_exposure(spec)
    if spec.endpoint.scaler_type == "REQUEST_COUNT":  # the endpoint's provider check refuses it, but only mid-deploy
        raise SpecError(f"stack {spec.name}: goldgate:spec.endpoint.scaler_type REQUEST_COUNT cannot be deployed: "
                        "RunPod refuses an idle timeout beside it on a queue endpoint, and the endpoint always "
                        "declares one (endpoint.idle_timeout_s): use QUEUE_DELAY")
    check_stacks(spec, load_cloud_stacks(settings.stacks_dir).values())
    copied = copied_secret_violations(settings.stacks_dir, spec.name)
    if copied:
        raise GuardrailError("guardrails refuse this deployment:\n  - " + "\n  - ".join(copied))


def cloudflare_provider(names: StackNames, secrets: StackSecrets, settings: ProgramSettings) -> cloudflare.Provider:
    """The stack's Cloudflare provider, on goldgate:cloudflareApiBase when that is set: every Cloudflare call of the
    stack (its resources and the D1 migrations) goes to the one API the operator named."""
    base = settings.cloudflare_api_base
    # Left out at the default, so a stack deployed before this setting existed sees no provider change.
    moved = {"base_url": base} if base.rstrip("/") != DEFAULT_CLOUDFLARE_API.rstrip("/") else {}
    return cloudflare.Provider(names.logical("cloudflare"), api_token=secrets.cloudflare_api_token, **moved)


def run(spec: StackSpec, secrets: StackSecrets, settings: ProgramSettings = ProgramSettings(),
        bundle: WorkerBundle | None = None) -> StackOutputs:
    """Declare one stack's resources and export its outputs."""
    preflight(spec, settings)
    assert spec.cloud is not None and spec.image is not None
    bundle = bundle or collect(settings.service_dir, settings.workflows_dir)
    migrations = read_migrations(settings.migrations_dir)
    names = StackNames.of(spec)
    account = spec.cloud.cloudflare_account_id

    provider = cloudflare_provider(names, secrets, settings)
    with_cf = pulumi.ResourceOptions(providers={"cloudflare": provider})
    storage = Storage(names.logical("storage"), StorageArgs(
        spec=spec, names=names, account_id=account, cloudflare_api_token=secrets.cloudflare_api_token,
        migrations=migrations, r2_write_permission_group_id=settings.r2_write_permission_group_id,
        r2_read_permission_group_id=settings.r2_read_permission_group_id,
        cloudflare_api_base=settings.cloudflare_api_base), opts=with_cf)
    gpu = GpuEndpoint(names.logical("gpu"), GpuEndpointArgs(
        spec=spec, names=names, runpod_api_key=secrets.runpod_api_key, r2_endpoint_url=storage.r2_endpoint_url,
        r2_bucket=storage.bucket_name, r2_access_key_id=storage.r2_access_key_id,
        r2_secret_access_key=storage.r2_secret_access_key, registry_login=secrets.registry_login()))
    api = Api(names.logical("api"), ApiArgs(
        spec=spec, names=names, account_id=account, bundle=bundle, database_id=storage.database_id,
        bucket_name=storage.bucket_name, endpoint_id=gpu.endpoint_id, endpoint_base=gpu.endpoint_base,
        runpod_api_key=secrets.runpod_api_key, webhook_secret=secrets.webhook_secret, api_token=secrets.api_token,
        webhook_secret_previous=secrets.webhook_secret_previous, api_token_previous=secrets.api_token_previous,
        client_tokens=secrets.client_tokens),
        # The API must not serve before its schema exists.
        opts=pulumi.ResourceOptions.merge(with_cf, pulumi.ResourceOptions(depends_on=[storage.migrations])))
    # Deleted first by `pulumi destroy`, which it stops while jobs are in flight (infra/runpod_drain_provider.py).
    gpu.stop_destroy_while_jobs_run([storage, api])

    outputs = StackOutputs(
        api_url=api.api_url, endpoint_id=gpu.endpoint_id, endpoint_base=gpu.endpoint_base,
        bucket=storage.bucket_name, d1_id=storage.database_id, image=spec.image,
        workflow_version=spec.workflow_version, registry_credential_id=gpu.registry_credential_id,
        r2_access_key_id=storage.r2_access_key_id,
        r2_secret_access_key=storage.r2_secret_access_key, storage=storage, gpu=gpu, api=api)
    for key, value in outputs.exports().items():
        pulumi.export(key, value)
    return outputs
