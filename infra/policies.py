"""Guardrails for the cloud stacks, usable two ways with one set of rules.

- Plain functions (`*_violations`, `check_stacks`) that the program calls before it declares a
  single resource, so the rules hold without the Pulumi CLI or a policy pack.
- pulumi_policy objects (`POLICIES`) wrapping the same functions for `pulumi up --policy-pack
  infra/policy_pack`. Only infra/policy_pack/__main__.py builds the PolicyPack: constructing one
  starts a server.

Rules: PROD has no network volume; every stack's image is `repo@sha256:<64 hex>`; STAGING and
PROD never share a resource name, id or API host, nor an encrypted API token or webhook secret (the current
ones or, during a rotation, the previous ones); PROD's D1 and R2 buckets are protected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from goldgate.errors import GoldgateError, SpecError
from goldgate.spec import (
    CLIENT_TOKENS_KEY,
    PREVIOUS_API_TOKEN_KEY,
    PREVIOUS_WEBHOOK_SECRET_KEY,
    STACK_SECRET_KEYS,
    STACKS_DIR,
    StackSpec,
    is_digest_ref,
    load_pulumi,
    read_yaml,
)
from infra.names import StackNames

RUNPOD_ENDPOINT_TYPE = "pulumi-python:dynamic/runpod:ServerlessEndpoint"
D1_DATABASE_TYPE = "cloudflare:index/d1Database:D1Database"
R2_BUCKET_TYPE = "cloudflare:index/r2Bucket:R2Bucket"
# The secrets no two stacks may share: the API's bearer token and the webhook signing key, and, while either is
# rotated, the one before it, which the API Worker still accepts as much as the current one: PROD's previous token
# equal to STAGING's token lets every STAGING client call PROD. Each previous key, by what it held before.
PREVIOUS_SECRETS = {PREVIOUS_API_TOKEN_KEY: "API token", PREVIOUS_WEBHOOK_SECRET_KEY: "webhook secret"}
PER_STACK_SECRETS = (STACK_SECRET_KEYS["api_token"], STACK_SECRET_KEYS["webhook_secret"], *PREVIOUS_SECRETS)
# Resource type -> the input holding its physical name (what Cloudflare / RunPod call it).
PHYSICAL_NAME_INPUT = {
    RUNPOD_ENDPOINT_TYPE: "name",
    D1_DATABASE_TYPE: "name",
    R2_BUCKET_TYPE: "name",
    "cloudflare:index/workersScript:WorkersScript": "scriptName",
    "cloudflare:index/apiToken:ApiToken": "name",
    "pulumi-python:dynamic/runpod:RegistryCredential": "name",
}


class GuardrailError(GoldgateError):
    """A stack breaks a guardrail; the message lists every violation and how to fix it."""


def image_violations(stack: str, image: str | None) -> list[str]:
    """Every stack runs an image pinned by digest: a tag can be re-pointed, and RunPod may keep a cached one."""
    if image and is_digest_ref(image):
        return []
    return [(f"stack {stack}: image {image!r} is not pinned by digest; set goldgate:spec.image to "
            "repo@sha256:<64 hex> (the digest `goldgate build` printed), never a tag")]


def network_volume_violations(stack: str, role: str, network_volume_ids: Sequence[str]) -> list[str]:
    """PROD bakes its models into the image; a network volume would make PROD depend on mutable state."""
    ids = [v for v in network_volume_ids if v]
    if role != "prod" or not ids:
        return []
    return [(f"stack {stack} (PROD): network volume {', '.join(ids)} attached; PROD must not use a network "
            "volume (models are baked into the image): remove endpoint.network_volume_id")]


def database_protection_violations(stack: str, role: str, protected: bool) -> list[str]:
    """Replacing or deleting PROD's D1 loses every job and metric: Pulumi must refuse to."""
    if role != "prod" or protected:
        return []
    return [(f"stack {stack} (PROD): the D1 database is not protected; set database.protect: true "
            "(replacing it deletes all jobs and metrics)")]


def bucket_protection_violations(stack: str, role: str, bucket: str, protected: bool) -> list[str]:
    """Replacing or deleting a PROD bucket loses the results clients still fetch, or the DR drill's D1 backups."""
    if role != "prod" or protected:
        return []
    return [(f"stack {stack} (PROD): R2 bucket {bucket} is not protected; PROD's buckets (results and D1 backups) "
             "must be declared with protect and retain_on_delete (infra/components/storage.py)")]


def api_hosts(spec: StackSpec) -> dict[str, str]:
    """The hosts the stack's API serves on or is reached at, by where each comes from. Compared as bare hosts: one
    stack's custom domain named as the other's public base URL would send its webhooks to the other's Worker."""
    route_host = None
    if spec.api.route:  # [scheme://][*[.]]host[/path]: the loader checked the shape
        route_host = spec.api.route.rpartition("://")[2].partition("/")[0]
        if not route_host.startswith("*."):  # `*example.com` serves example.com too; `*.example.com` only below it
            route_host = route_host.removeprefix("*")
    public_host = None
    if spec.api.public_base_url:  # a port only tells apart stand-ins on this machine: Workers answer on 443 alone
        url = urlsplit(spec.api.public_base_url)
        public_host = url.hostname if url.port in (None, 443) else f"{url.hostname}:{url.port}"
    hosts = {"custom domain": spec.api.custom_domain, "route host": route_host, "public base URL host": public_host}
    return {kind: host for kind, host in hosts.items() if host}


def identifiers_of(spec: StackSpec) -> dict[str, str]:
    """Every name and id a stack claims for itself, by kind (shared account ids are not listed)."""
    found = {f"{kind} name": value for kind, value in StackNames.of(spec).physical().items()}
    found.update(api_hosts(spec))
    if spec.endpoint.network_volume_id:
        found["network volume id"] = spec.endpoint.network_volume_id
    return found


def shared_identifier_violations(specs: Iterable[StackSpec]) -> list[str]:
    """No two stacks may claim the same name or id: STAGING must never touch PROD's resources."""
    owners: dict[str, tuple[str, str]] = {}
    problems: dict[tuple[str, str], str] = {}  # one report per shared value and stack
    for spec in specs:
        for kind, value in identifiers_of(spec).items():
            key = value.lower().rstrip("/")
            if key in owners and owners[key][0] != spec.name:
                other, other_kind = owners[key]
                problems.setdefault((key, spec.name), (
                    f"stacks {other} and {spec.name} share {value!r} ({other_kind} / {kind}); give each stack its "
                    "own names and API host (e.g. suffix them with the stack name)"))
            owners.setdefault(key, (spec.name, kind))
    return list(problems.values())


def copied_secret_violations(directory: Path = STACKS_DIR, stack: str | None = None) -> list[str]:
    """No two stack files may hold the same encrypted secret of PER_STACK_SECRETS or a named client's token
    (goldgate:clientTokens.<name>), under the same key or not (only pairs with `stack`, if given).

    Pulumi encrypts each value with a fresh nonce, so equal ciphertexts mean a copied stack file (or a `secure:` line
    copied from one into the other); with a passphrase secrets provider (whose salt was copied along) the copy
    decrypts: STAGING's token would open PROD's API and its key sign PROD's webhooks, and so would STAGING's token
    copied into PROD's apiTokenPrevious, or a client's token copied from one stack's clientTokens into the other's."""
    holders: dict[str, list[tuple[str, str]]] = {}  # ciphertext -> each (stack, key) holding it, in file order
    for path in sorted(directory.glob("Pulumi.*.yaml")):
        doc = read_yaml(path)
        config = doc.get("config") if isinstance(doc, Mapping) else None
        for key, value in _secret_values(config if isinstance(config, Mapping) else {}):
            cipher = value.get("secure") if isinstance(value, Mapping) else None
            if isinstance(cipher, str) and not cipher.startswith("<"):  # not unset, not the shipped placeholder
                holders.setdefault(cipher, []).append((path.name[len("Pulumi."):-len(".yaml")], key))
    problems = []
    for found in holders.values():
        stacks = list(dict.fromkeys(name for name, _ in found))
        if len(stacks) > 1 and (stack is None or stack in stacks):
            problems.append(_copied_secret(found, stacks, stack))
    return problems


def _secret_values(config: Mapping[str, object]) -> list[tuple[str, object]]:
    """Each per-stack secret of a stack file's config, by its key without the namespace: PER_STACK_SECRETS, then each
    named client's (`clientTokens.<name>`, set with `--path`)."""
    values = [(key, config.get(f"goldgate:{key}")) for key in PER_STACK_SECRETS]
    clients = config.get(f"goldgate:{CLIENT_TOKENS_KEY}")
    if isinstance(clients, Mapping) and list(clients) == ["secure"]:  # the whole object set as one secret
        values.append((CLIENT_TOKENS_KEY, clients))
    elif isinstance(clients, Mapping):
        values += [(f"{CLIENT_TOKENS_KEY}.{name}", value) for name, value in clients.items()]
    return values


def _copied_secret(found: list[tuple[str, str]], stacks: list[str], stack: str | None) -> str:
    """The violation for one ciphertext that `found` (stack, key) in several `stacks` hold, with one way out: a previous
    key that holds it (removing it changes nothing for the stack's clients; in the stack being deployed first), or
    else a new value in the stack being deployed (`stack`), or else in the last one."""
    keys = list(dict.fromkeys(key for _, key in found))
    mine = [holder for holder in found if stack is None or holder[0] == stack]
    name, key = next((h for h in [*reversed(mine), *reversed(found)] if h[1] in PREVIOUS_SECRETS), mine[-1])
    if key in PREVIOUS_SECRETS:
        way_out = (f"goldgate:{key} holds the {PREVIOUS_SECRETS[key]} stack {name} itself used before, or "
                   f"nothing: `pulumi config rm goldgate:{key} --stack {name}`")
    else:
        path = " --path" if key.startswith(f"{CLIENT_TOKENS_KEY}.") else ""  # a client's token: one leaf of the object
        way_out = (f"give each its own, `openssl rand -hex 32 | pulumi config set --secret{path} goldgate:{key} "
                   f"--stack {name}`")
    if len(keys) == 1 and key not in PREVIOUS_SECRETS:  # the same current key: a whole stack file copied
        return (f"stacks {' and '.join(stacks)} hold the same encrypted goldgate:{key} (a copied stack "
                f"file), so they share its value: {way_out}")
    held = " and ".join(f"{holder}'s goldgate:{what}" for holder, what in found)
    return (f"stacks {' and '.join(stacks)} share a secret (copied from one stack file into the other): {held} hold "
            f"the same encrypted value, so one stack's API Worker accepts the other's secret: {way_out}")


def spec_violations(spec: StackSpec) -> list[str]:
    """The single-stack rules, evaluated on the spec alone."""
    return (image_violations(spec.name, spec.image)
            + network_volume_violations(spec.name, spec.role,
                                        [spec.endpoint.network_volume_id] if spec.endpoint.network_volume_id else [])
            + database_protection_violations(spec.name, spec.role, spec.database.protect or spec.is_prod))


def load_cloud_stacks(directory: Path = STACKS_DIR) -> dict[str, StackSpec]:
    """Every cloud stack file (`Pulumi.<stack>.yaml`) in `directory`, validated."""
    stacks = {}
    for path in sorted(directory.glob("Pulumi.*.yaml")):
        name = path.name[len("Pulumi."):-len(".yaml")]
        stacks[name] = load_pulumi(name, directory)
    return stacks


def check_stacks(spec: StackSpec, others: Iterable[StackSpec]) -> None:
    """Raise GuardrailError listing every violation of `spec`, alone and against the other stacks."""
    peers = [o for o in others if o.name != spec.name]
    problems = spec_violations(spec) + shared_identifier_violations([spec, *peers])
    if problems:
        raise GuardrailError("guardrails refuse this deployment:\n  - " + "\n  - ".join(problems))


# --- pulumi_policy wrappers -------------------------------------------------------------------------


def stack_of_urn(urn: str) -> str:
    """`urn:pulumi:<stack>::<project>::<type>::<name>` -> stack."""
    parts = urn.split("::")
    if not parts or not parts[0].startswith("urn:pulumi:"):
        raise ValueError(f"not a Pulumi URN: {urn!r}")
    return parts[0][len("urn:pulumi:"):]


def role_of_stack(stack: str, directory: Path = STACKS_DIR) -> str:
    """The stack's role from its stack file; a stack without a readable file counts as PROD (fail safe)."""
    try:
        return load_pulumi(stack, directory).role
    except SpecError:
        return "prod"


def _validate_endpoint(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != RUNPOD_ENDPOINT_TYPE:
        return
    stack = stack_of_urn(args.urn)
    for problem in image_violations(stack, args.props.get("image")):
        report(problem, None)


def _validate_no_volume(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != RUNPOD_ENDPOINT_TYPE:
        return
    stack = stack_of_urn(args.urn)
    volumes = list(args.props.get("network_volume_ids") or [])
    for problem in network_volume_violations(stack, role_of_stack(stack, _stacks_dir(args)), volumes):
        report(problem, None)


def _validate_d1_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != D1_DATABASE_TYPE:
        return
    stack = stack_of_urn(args.urn)
    for problem in database_protection_violations(stack, role_of_stack(stack, _stacks_dir(args)),
                                                  bool(args.opts.protect)):
        report(problem, None)


def _validate_r2_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != R2_BUCKET_TYPE:
        return
    stack = stack_of_urn(args.urn)
    for problem in bucket_protection_violations(stack, role_of_stack(stack, _stacks_dir(args)),
                                                str(args.props.get("name") or args.name), bool(args.opts.protect)):
        report(problem, None)


def _validate_share_nothing(args: StackValidationArgs, report: ReportViolation) -> None:
    directory = _stacks_dir(args)
    try:
        specs = load_cloud_stacks(directory)
    except SpecError as exc:
        report(f"cannot read the stack files in {directory}: {exc}", None)
        return
    for problem in shared_identifier_violations(specs.values()) + copied_secret_violations(directory):
        report(problem, None)
    for resource in args.resources:
        field = PHYSICAL_NAME_INPUT.get(resource.resource_type)
        if not field or not isinstance(resource.props.get(field), str):
            continue
        stack = stack_of_urn(resource.urn)
        name = resource.props[field]
        for other, spec in specs.items():
            if other != stack and name.lower() in {v.lower() for v in identifiers_of(spec).values()}:
                report(f"{resource.name} in stack {stack} is named {name!r}, which stack {other} claims; "
                       "each stack's names come from its own stack file", resource.urn)


def _stacks_dir(args: ResourceValidationArgs | StackValidationArgs) -> Path:
    configured = args.get_config().get("stacksDir") if args.get_config() else None
    return Path(configured) if configured else STACKS_DIR


IMAGE_PINNED = ResourceValidationPolicy(
    name="image-digest-pinned", enforcement_level=EnforcementLevel.MANDATORY, validate=_validate_endpoint,
    description="Every stack's RunPod endpoint runs an image pinned by digest (repo@sha256:<64 hex>).")
PROD_NO_NETWORK_VOLUME = ResourceValidationPolicy(
    name="prod-no-network-volume", enforcement_level=EnforcementLevel.MANDATORY, validate=_validate_no_volume,
    description="PROD's RunPod endpoint attaches no network volume; models are baked into the image.")
PROD_D1_PROTECTED = ResourceValidationPolicy(
    name="prod-d1-protected", enforcement_level=EnforcementLevel.MANDATORY, validate=_validate_d1_protected,
    description="PROD's D1 database is protected: Pulumi refuses to replace or delete it.")
PROD_R2_PROTECTED = ResourceValidationPolicy(
    name="prod-r2-protected", enforcement_level=EnforcementLevel.MANDATORY, validate=_validate_r2_protected,
    description="PROD's R2 buckets (results, D1 backups) are protected: Pulumi refuses to replace or delete them.")
STACKS_SHARE_NOTHING = StackValidationPolicy(
    name="stacks-share-nothing", enforcement_level=EnforcementLevel.MANDATORY, validate=_validate_share_nothing,
    description="STAGING and PROD never share a resource name or id, nor an encrypted secret (current or previous).")

POLICIES = [IMAGE_PINNED, PROD_NO_NETWORK_VOLUME, PROD_D1_PROTECTED, PROD_R2_PROTECTED, STACKS_SHARE_NOTHING]
