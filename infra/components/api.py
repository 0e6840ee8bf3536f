"""Api: the `service/` Python Worker with its D1 and R2 bindings, secrets, settings and an optional route.

Binding names are the ServiceConfig keys (docs/INTERFACES.md) upper-cased, so the Worker entry
builds its config with one rule: `ServiceConfig.from_mapping({k.lower(): v for k, v in env})`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_cloudflare as cloudflare

from goldgate.errors import SpecError
from goldgate.spec import StackSpec, show
from infra.names import StackNames
from infra.worker_bundle import PYTHON, WorkerBundle
from service.clients import BINDINGS as CLIENT_TOKEN_BINDINGS
from service.ratelimit import PERIOD_S

COMPATIBILITY_FLAGS = ["python_workers"]
# Workers Logs keeps the service's v1 JSON lines, searchable in the dashboard for days (docs/LOG_EVENTS.md). A script
# uploaded through the API has none unless it asks; every line is kept (one per request, so well inside the
# included volume of a serving workload).
WORKERS_LOGS = cloudflare.WorkersScriptObservabilityArgs(
    enabled=True, head_sampling_rate=1,
    logs=cloudflare.WorkersScriptObservabilityLogsArgs(enabled=True, invocation_logs=True, head_sampling_rate=1))
DB_BINDING = "DB"
RESULTS_BINDING = "RESULTS"
# The Workers Rate Limiting binding of each limited route (service/cloudflare_entry.py RATE_LIMIT_BINDINGS), and the
# StackSpec field its limit comes from.
RATE_LIMIT_BINDINGS = {"RATE_LIMIT_CREATE": "create_per_minute", "RATE_LIMIT_INPUTS": "inputs_per_minute"}
# Smart Placement (api.smart_placement): Cloudflare runs the Worker where its calls to D1 and RunPod are quickest.
SMART_PLACEMENT = cloudflare.WorkersScriptPlacementArgs(mode="smart")


def api_url(spec: StackSpec) -> str:
    """Where clients and RunPod's webhooks reach the API: custom domain, else the declared public URL."""
    if spec.api.custom_domain:
        return f"https://{spec.api.custom_domain}"
    if spec.api.public_base_url:
        return spec.api.public_base_url.rstrip("/")
    if spec.api.route:  # a route pattern may name its scheme (Cloudflare accepts http:// and https:// ones)
        scheme, _, rest = spec.api.route.rpartition("://")
        host, _, path = rest.partition("/")
        # The address is https://<host>/ (RunPod's webhooks, /api/..., /healthz): only a route matching all of it
        # serves it.
        why = ("it matches plain-http requests only (http://)" if scheme == "http" else
               "it matches only the host's subdomains (*.)" if host.startswith("*.") else
               f"it matches only part of the host's paths (/{path})" if path != "*" else None)
        if why:
            raise SpecError(f"stack {spec.name}: goldgate:spec.api.route {show(spec.api.route)} does not serve "
                            f"https://{host.lstrip('*.')}/ ({why}): set api.public_base_url to the https:// "
                            "address where the Worker answers every path")
        return "https://" + host.lstrip("*.")
    raise SpecError(f"stack {spec.name}: goldgate:spec.api needs public_base_url (e.g. the workers.dev URL), "
                    "custom_domain or route: RunPod's webhooks must know where the API lives")


def _at_workers_dev(url: str) -> bool:
    """Whether `url` is a workers.dev address, by its host as DNS reads it: the spec takes a host in any case and
    with a port (`https://x.acct.Workers.Dev`, `https://x.acct.workers.dev:443`), and the text's own ending
    took such an API's one address for another, so `pulumi up` turned workers.dev off under it."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host.rstrip(".").endswith(".workers.dev")


def check_exposure(spec: StackSpec, warn: bool = True) -> None:
    """Refuse an API that could not be exposed as declared (the program calls this before declaring anything),
    and warn of settings that do not do what they seem to. `warn=False`: refusals only, for the component's own
    check, so `pulumi up` shows each warning once."""
    for warning in _exposure(spec):
        if warn:
            pulumi.log.warn(warning)


def _exposure(spec: StackSpec) -> list[str]:
    """The warnings of check_exposure; its refusals raised."""
    warnings: list[str] = []
    api_url(spec)
    domain = spec.api.custom_domain  # a hostname: the spec loader refuses anything else
    if spec.api.route and not spec.api.zone_id:
        raise SpecError(f"stack {spec.name}: goldgate:spec.api.route needs api.zone_id (the zone it lives in)")
    if spec.api.zone_id and not (spec.api.route or domain):
        # It only places a route or a custom domain: alone it declares nothing, and the API stays where it was. A
        # warning, not a refusal: a stack file that always carried it deployed before, and a rollback during an
        # incident must not be refused over a setting that changes nothing.
        warnings.append(f"stack {spec.name}: goldgate:spec.api.zone_id is set but neither api.route nor "
                        "api.custom_domain is, so nothing uses it and the API stays on its workers.dev URL: add the "
                        "route or custom domain it is the zone of, or remove zone_id")
    if spec.api.keep_workers_dev:
        address = api_url(spec)
        if _at_workers_dev(address):
            why = ("without custom_domain or route the API is on workers.dev anyway"
                   if not (domain or spec.api.route) else
                   f"api.public_base_url {show(spec.api.public_base_url)} keeps it on workers.dev anyway")
            raise SpecError(f"stack {spec.name}: goldgate:spec.api.keep_workers_dev keeps workers.dev serving "
                            "beside api.custom_domain (or api.route) while a stack switches to it; "
                            f"{why}: remove keep_workers_dev")
        # The switch from workers.dev to a custom domain or route: the jobs sent before it were given webhook
        # and result URLs at workers.dev, so it keeps serving (Api) until the setting is removed.
        warnings.append(f"stack {spec.name}: goldgate:spec.api.keep_workers_dev: workers.dev keeps serving "
                        f"beside {address}, for the jobs sent before the switch (new ones are given "
                        f"{address}). Remove it once those have ended (the endpoint's ttl and execution "
                        "timeout after the switch; `goldgate stuck` lists any whose webhook never came): until "
                        "then the API also answers at workers.dev, outside the zone's WAF and Access rules")
    url = spec.api.public_base_url
    if not url:
        return warnings
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise SpecError(f"stack {spec.name}: goldgate:spec.api.public_base_url {show(url)} is not a URL") from None
    if domain:
        if host.rstrip(".") != domain.lower().rstrip("."):
            # A public_base_url naming another host is not used, though its operator may give it to clients. A
            # warning, as for zone_id: the API works, at the custom domain.
            switch = ("" if spec.api.keep_workers_dev or not host.endswith(".workers.dev") else
                      "; if jobs sent before the switch to the custom domain are still running, their "
                      "webhooks go to workers.dev, which this `pulumi up` turns off: set "
                      "api.keep_workers_dev: true until they end")
            warnings.append(f"stack {spec.name}: goldgate:spec.api.public_base_url {show(url)} is not used: "
                            f"with api.custom_domain set, the API's address (webhooks, result URLs) is "
                            f"https://{domain}; remove public_base_url or set it to that address{switch}")
        return warnings
    script = spec.api.script_name
    if host.endswith(".workers.dev") and host.split(".", 1)[0] != script:
        # workers.dev serves a Worker at <script name>.<account subdomain>.workers.dev and nowhere else.
        expected = f"https://{script}.{host.split('.', 1)[1]}"
        raise SpecError(f"stack {spec.name}: goldgate:spec.api.public_base_url {show(url)} is not where Worker {script} "
                        f"is served: set it to {expected} (or rename api.script_name back)")
    return warnings


def kept_workers_dev(spec: StackSpec) -> bool:
    """Whether the Worker's workers.dev URL stays enabled beside its custom domain or route
    (api.keep_workers_dev): an explicit choice, since it is a second address outside the zone's WAF and
    Access rules. Without it a switch to either turns workers.dev off at once, and the webhooks of the jobs
    sent before it are lost."""
    return spec.api.keep_workers_dev and not _at_workers_dev(api_url(spec))


def on_workers_dev(spec: StackSpec) -> bool:
    """Whether the Worker answers at its workers.dev URL: the API's address is there, or it is kept beside the
    custom domain or route (kept_workers_dev). Otherwise workers.dev is turned off."""
    return _at_workers_dev(api_url(spec)) or kept_workers_dev(spec)


def rate_limit_namespace_id(script_name: str, binding: str) -> str:
    """The namespace id of a Worker's rate limit binding: a positive integer (as text) Cloudflare counts the binding's
    keys under, shared by every Worker of the account that names it. Derived from the script name (unique within an
    account: STAGING's and PROD's differ) and the binding, so no stack sets one and none shares another's counts;
    nine digits, so it cannot meet the small ids (1001, ...) hand-written configs use."""
    digest = hashlib.sha256(f"goldgate.ratelimit.v1:{script_name}:{binding}".encode()).digest()
    return str(100_000_000 + int.from_bytes(digest[:8], "big") % 900_000_000)


def settings_vars(spec: StackSpec) -> dict[str, str]:
    """The plain-text settings the service reads (never secrets)."""
    ep = spec.endpoint
    out = {"STACK": spec.name, "PUBLIC_BASE_URL": api_url(spec), "WORKFLOW_VERSION": spec.workflow_version,
           "WORKER_IMAGE_TAG": spec.image or "", "EXECUTION_TIMEOUT_MS": str(ep.execution_timeout_ms),
           "TTL_MS": str(ep.ttl_ms), "MAX_BODY_BYTES": str(spec.api.max_body_bytes),
           "SIGNED_URL_TTL_S": str(spec.api.signed_url_ttl_s),
           "MAX_JOBS_IN_FLIGHT": str(spec.api.max_jobs_in_flight), "GPU_TYPE": ep.cost_gpu_type,
           "MAX_INPUT_BYTES": str(spec.api.max_input_bytes), "MAX_INPUT_PIXELS": str(spec.api.max_input_pixels),
           "GPU_COUNT": str(ep.gpu_count),
           # what a 429 rate_limited names; the RATE_LIMIT_* bindings count (bindings())
           "CREATE_RATE_LIMIT_PER_MINUTE": str(spec.api.rate_limits.create_per_minute),
           "INPUTS_RATE_LIMIT_PER_MINUTE": str(spec.api.rate_limits.inputs_per_minute),
           # the bucket's lifecycle rule, told to the service: a 404 result_missing says expired or lost
           "RESULT_TTL_DAYS": str(spec.storage.result_ttl_days)}
    price = spec.price_per_gpu_second()
    if price is not None:  # absent: the service falls back to its vendor price table
        out["PRICE_PER_GPU_SECOND"] = repr(float(price))
    if spec.api.daily_spend_limit_usd is not None:  # absent: no daily spend limit (service/spend.py)
        out["DAILY_SPEND_LIMIT_USD"] = repr(float(spec.api.daily_spend_limit_usd))
    if spec.api.client_daily_spend_limit_usd is not None:  # absent: no client's own daily spend limit
        out["CLIENT_DAILY_SPEND_LIMIT_USD"] = repr(float(spec.api.client_daily_spend_limit_usd))
    kept = spec.database.retention
    if kept is not None:  # read by the Worker's scheduled handler; absent: it prunes nothing
        out["RETENTION_KEEP_DAYS"] = str(kept.keep_days)
        if kept.metrics_keep_days is not None:
            out["RETENTION_METRICS_KEEP_DAYS"] = str(kept.metrics_keep_days)
    return out


@dataclass(frozen=True)
class ApiArgs:
    spec: StackSpec
    names: StackNames
    account_id: str
    bundle: WorkerBundle
    database_id: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    endpoint_id: pulumi.Input[str]
    endpoint_base: pulumi.Input[str]
    runpod_api_key: pulumi.Input[str]
    webhook_secret: pulumi.Input[str]
    api_token: pulumi.Input[str]
    # Only while the webhook secret is rotated: the old one, still accepted for what it signed (service/signing.py).
    webhook_secret_previous: pulumi.Input[str] | None = None
    # Only while the API token is rotated: the old one, still accepted as a bearer token.
    api_token_previous: pulumi.Input[str] | None = None
    # Only when the stack names clients (goldgate:clientTokens): JSON of each client's name -> the sha256 hex of its
    # token (service/clients.py), in one part for each binding (CLIENT_TOKENS, CLIENT_TOKENS_2, ...) as Cloudflare
    # takes at most 5 KB in one; the Worker never holds a client's token.
    client_tokens: Sequence[pulumi.Input[str]] | None = None


def bindings(args: ApiArgs) -> list[cloudflare.WorkersScriptBindingArgs]:
    b = cloudflare.WorkersScriptBindingArgs
    # A jurisdictional (eu, fedramp) bucket exists only within its jurisdiction: the binding must name it.
    jurisdiction = args.spec.storage.jurisdiction
    out = [b(type="d1", name=DB_BINDING, id=args.database_id),
           b(type="r2_bucket", name=RESULTS_BINDING, bucket_name=args.bucket_name,
             jurisdiction=None if jurisdiction == "default" else jurisdiction)]
    secret = [("API_TOKEN", args.api_token), ("WEBHOOK_SECRET", args.webhook_secret),
              ("RUNPOD_API_KEY", args.runpod_api_key)]
    if args.webhook_secret_previous is not None:
        # Declared only during a rotation: the bindings list is the script's whole set, so once the key is removed,
        # the next `pulumi up` uploads the script without it and the old secret stops verifying anything.
        secret.append(("WEBHOOK_SECRET_PREVIOUS", args.webhook_secret_previous))
    if args.api_token_previous is not None:  # as above: once the key is removed, the old token opens nothing
        secret.append(("API_TOKEN_PREVIOUS", args.api_token_previous))
    if args.client_tokens is not None:  # as above: once the last client is removed, no client token opens anything
        # strict: a part past the last binding the Worker reads would drop clients (client_token_hashes refuses it)
        parts = list(args.client_tokens)
        secret.extend(zip(CLIENT_TOKEN_BINDINGS[:len(parts)], parts, strict=True))
    for name, value in secret:
        out.append(b(type="secret_text", name=name, text=pulumi.Output.secret(value)))
    # Per API token and Cloudflare location, over the period a 429's Retry-After names (service/ratelimit.py).
    limits = args.spec.api.rate_limits
    out.extend(b(type="ratelimit", name=name, namespace_id=rate_limit_namespace_id(args.names.script, name),
                 simple=cloudflare.WorkersScriptBindingSimpleArgs(limit=getattr(limits, field),
                                                                  period=PERIOD_S))
               for name, field in RATE_LIMIT_BINDINGS.items())
    plain = {**settings_vars(args.spec), "RUNPOD_ENDPOINT_ID": args.endpoint_id,
             "RUNPOD_ENDPOINT_BASE": args.endpoint_base}
    out.extend(b(type="plain_text", name=name, text=value) for name, value in sorted(plain.items()))
    return out


class Api(pulumi.ComponentResource):
    """The API Worker (each apply deploys at 100%), its workers.dev or custom-domain exposure, and the Cron Trigger
    that prunes D1 when the stack sets database.retention."""

    api_url: str
    script_name: pulumi.Output[str]

    def __init__(self, name: str, args: ApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        check_exposure(args.spec, warn=False)  # the program's preflight has warned
        super().__init__("goldgate:api:Worker", name, None, opts)
        spec, names = args.spec, args.names
        child = pulumi.ResourceOptions(parent=self)
        self.api_url = api_url(spec)
        files = {f.name: cloudflare.WorkersScriptFilesArgs(content_type=f.content_type, content_base64=f.base64,
                                                           content_sha256=f.sha256)
                 for f in args.bundle.files}
        self.script = cloudflare.WorkersScript(
            names.logical("api"), account_id=args.account_id, script_name=names.script,
            main_module=args.bundle.main_module, content=args.bundle.main_content, content_type=PYTHON,
            compatibility_date=spec.api.compatibility_date, compatibility_flags=COMPATIBILITY_FLAGS,
            bindings=bindings(args), files=files, observability=WORKERS_LOGS,
            placement=SMART_PLACEMENT if spec.api.smart_placement else None, opts=child)
        self.script_name = self.script.script_name
        addresses: list[pulumi.Resource] = []   # where the API answers besides workers.dev
        if spec.api.custom_domain:
            self.custom_domain = cloudflare.WorkersCustomDomain(
                names.logical("api-domain"), account_id=args.account_id, hostname=spec.api.custom_domain,
                service=self.script.script_name, zone_id=spec.api.zone_id, opts=child)
            addresses.append(self.custom_domain)
        if spec.api.route:
            self.route = cloudflare.WorkersRoute(
                names.logical("api-route"), zone_id=spec.api.zone_id, pattern=spec.api.route,
                script=self.script.script_name, opts=child)
            addresses.append(self.route)
        # Declared on every stack, enabled only while the API is (or is kept) there: the provider's delete of
        # this resource leaves workers.dev as it is ("will not change it in the API"), so a stack that stopped
        # declaring it, on its switch to a custom domain or route, kept answering at workers.dev, outside the
        # zone's WAF and Access rules. Preview URLs are never served. After the domain or route: nothing else
        # orders them, and on the switch `pulumi up` ran both at once, so workers.dev could be turned off
        # before the new address existed, leaving the API (clients, RunPod's webhooks) reachable nowhere.
        self.subdomain = cloudflare.WorkersScriptSubdomain(
            names.logical("api-workers-dev"), account_id=args.account_id, script_name=self.script.script_name,
            enabled=on_workers_dev(spec), previews_enabled=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=addresses))
        if spec.database.retention is not None:
            self.cron = cloudflare.WorkersCronTrigger(
                names.logical("api-retention"), account_id=args.account_id, script_name=self.script.script_name,
                schedules=[cloudflare.WorkersCronTriggerScheduleArgs(cron=spec.database.retention.cron)], opts=child)
        self.register_outputs({"api_url": self.api_url, "script_name": self.script_name})
