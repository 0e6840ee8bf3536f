"""The checklist's facts read from the cloud: the same `Facts` that `gather_local` fills, from the APIs.

Sources: the stack files (`stacks/Pulumi.<stack>.yaml`), RunPod REST v2 (each role's endpoint: image,
env WORKFLOW_VERSION, network volumes, max workers, releases and rollout) and the data plane's
/health, the stack's D1 over the Cloudflare REST API (jobs, webhook_deliveries, job_metrics; its size), and
what lives beside the repository: the ledger, the golden report, images/worker, the polling scan,
the latest DR drill. Everything is read-only: no webhook is replayed into a cloud stack and no job
is submitted; idempotency is judged on the deliveries D1 already recorded.

What a StackSpec does not carry but the cloud reports (scaled-down max workers, a rollout in
progress, /health counters, drift between the stack file and the endpoint) comes back as notes
beside the facts (`CloudReading`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from goldgate.cloudflare.api import DEFAULT_API_BASE, CloudflareApi, path_segment
from goldgate.cloudflare.d1 import MAX_DATABASE_BYTES, D1Client
from goldgate.cloudflare.errors import CloudflareAuthError, CloudflareNotFound
from goldgate.errors import GoldgateError, SpecError
from goldgate.ops.checklist_facts import (
    SERVICE_DIR,
    WORKER_DIR,
    DatabaseRoom,
    Facts,
    ImageModels,
    JobFacts,
    LiveFacts,
    ServingWindow,
    WorkerCrons,
    attempt_worker_facts,
    job_facts_from_rows,
    migration_facts_from_rows,
    read_golden_suite,
    read_log_facts,
    serving_window,
)
from goldgate.runpod import ControlPlaneClient, DataPlaneClient, Endpoint
from goldgate.spec import (
    ROLES,
    STACKS_DIR,
    StackSpec,
    from_mapping,
    is_digest_ref,
    load_pulumi,
    read_yaml,
    show,
)

RUNPOD_KEY_ENV = "RUNPOD_API_KEY"
CLOUDFLARE_TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
# RunPod lowers an unused endpoint's max workers to 2 after 3 quiet days and to 0 after 7.
IDLE_SCALED_MAX = 2
_TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")
# Stands in for a tag pin while the rest of the stack file is validated; never reported or used.
_PLACEHOLDER_IMAGE = "placeholder/validation@sha256:" + "0" * 64
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class CloudFactError(GoldgateError):
    """A cloud resource the checklist reads is missing or ambiguous; the message says which and what to do."""


# -- credentials ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CloudCredentials:
    """API credentials, from the environment only; never part of a repr, a log or the output."""

    runpod_api_keys: Mapping[str, str] = field(repr=False)   # stack name -> key
    cloudflare_api_token: str = field(repr=False)


def _env_name(base: str, stack: str) -> str:
    return f"{base}_{stack.upper().replace('-', '_')}"


def credentials_from_env(stacks: Iterable[str], env: Mapping[str, str] | None = None,
                         need_runpod: bool = True) -> CloudCredentials:
    """`RUNPOD_API_KEY_<STACK>` or `RUNPOD_API_KEY` per stack (as the cloud deployer reads them), and
    `CLOUDFLARE_API_TOKEN`. A missing one is a one-line error naming the variable."""
    env = os.environ if env is None else env
    keys: dict[str, str] = {}
    for stack in stacks if need_runpod else ():
        key = env.get(_env_name(RUNPOD_KEY_ENV, stack)) or env.get(RUNPOD_KEY_ENV)
        if not key:
            raise GoldgateError(f"{RUNPOD_KEY_ENV} is not set: the cloud checklist reads the {stack} endpoint with "
                                f"it (or set {_env_name(RUNPOD_KEY_ENV, stack)} for that stack alone)")
        keys[stack] = key
    token = env.get(CLOUDFLARE_TOKEN_ENV)
    if not token:
        raise GoldgateError(f"{CLOUDFLARE_TOKEN_ENV} is not set: reading the stack's D1 needs an API token "
                            "with D1 read permission")
    return CloudCredentials(runpod_api_keys=keys, cloudflare_api_token=token)


# -- stack files ---------------------------------------------------------------------------------

def cloud_stack_names(stacks_dir: Path = STACKS_DIR) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in stacks_dir.glob("Pulumi.*.yaml"))


def load_cloud_stack(name: str, stacks_dir: Path = STACKS_DIR) -> tuple[StackSpec, str | None]:
    """(spec, image pinned in the file). A tag pin is kept as written, for the checklist to judge,
    while every other field of the file is still validated; any other error is the SpecError."""
    try:
        spec = load_pulumi(name, stacks_dir)
        return spec, spec.image
    except SpecError as exc:
        if "goldgate:spec.image" not in str(exc):
            raise
        path = stacks_dir / f"Pulumi.{name}.yaml"
        raw = ((read_yaml(path) or {}).get("config") or {}).get("goldgate:spec")  # as load_pulumi read it
        image = raw.get("image") if isinstance(raw, Mapping) else None
        if not isinstance(image, str) or is_digest_ref(image):
            raise
        spec = from_mapping(name, {**raw, "image": _PLACEHOLDER_IMAGE}, "cloud", str(path))
        return dataclasses.replace(spec, image=None), image


def raw_pin(name: str, stacks_dir: Path = STACKS_DIR) -> str | None:
    """The image a stack file pins, read without validating the rest (for a file that does not validate); None
    when the file itself is not one Pulumi reads (duplicate keys, a merge bomb, too large, not YAML)."""
    try:
        doc = read_yaml(stacks_dir / f"Pulumi.{name}.yaml")
        image = doc["config"]["goldgate:spec"]["image"]
    except (SpecError, KeyError, TypeError):
        return None
    return image if isinstance(image, str) else None


def cloudflare_account(spec: StackSpec) -> str:
    account = spec.cloud.cloudflare_account_id if spec.cloud else ""
    if not account or account.startswith("<"):
        raise GoldgateError(f"stacks/Pulumi.{spec.name}.yaml has no Cloudflare account id: set "
                            "goldgate:spec.cloud.cloudflare_account_id (32 hex, the dashboard's Account ID)")
    return account


def checked_database_id(database_id: str | None) -> str | None:
    """A D1 uuid given by hand; anything else could address another API path."""
    if database_id is not None and not _UUID.match(database_id):
        raise GoldgateError(f"--database-id {database_id[:64]!r} is not a D1 uuid (8-4-4-4-12 hex, from "
                            "`wrangler d1 list`)")
    return database_id


def find_database(d1: D1Client, name: str) -> str:
    """The uuid of the account's D1 database named `name` (the stack's database.name)."""
    # The list is searched by name and read to its last page: a search may match more than the name itself
    # (leftover `<name>-drill-...` scratch databases), and a first page proves nothing absent.
    uuids = [d.uuid for d in d1.list_databases(name=name) if d.name == name]
    if not uuids:
        raise CloudFactError(f"Cloudflare account {d1.account_id} has no D1 database named {name}: "
                             "`pulumi up` creates it, or pass --database-id")
    if len(uuids) > 1:
        raise CloudFactError(f"{len(uuids)} D1 databases are named {name} ({', '.join(uuids)}); pass --database-id")
    return uuids[0]


def read_d1_room(d1: D1Client, database_id: str, name: str) -> DatabaseRoom:
    """The stack's D1 size (the API's `file_size`, one GET) against D1's cap."""
    return DatabaseRoom(f"D1 {name} ({database_id})", d1.database_size(database_id),
                        cap_bytes=MAX_DATABASE_BYTES, database_id=database_id)


def read_worker_crons(api: CloudflareApi, account: str, spec: StackSpec) -> WorkerCrons:
    """The Cron Triggers Cloudflare runs on the stack's API Worker (Workers Scripts schedules), whitespace
    normalised as the spec loader normalises the declared one, and the RETENTION_* plain-text bindings its
    scheduled run prunes by (the script's settings; secret bindings carry no text there)."""
    script = spec.api.script_name
    path = (f"/accounts/{path_segment(account, 'account id')}/workers/scripts/"
            f"{path_segment(script, 'Worker script name')}")
    result = _read_script(api, account, spec, f"{path}/schedules")
    schedules = result.get("schedules") if isinstance(result, dict) else None
    if not isinstance(schedules, list) or not all(isinstance(s, dict) and isinstance(s.get("cron"), str)
                                                  for s in schedules):
        raise CloudFactError(f"GET {path}/schedules answered {str(result)[:120]!r}, not a list of schedules with "
                             "crons")
    settings = _read_script(api, account, spec, f"{path}/settings")
    bindings = settings.get("bindings") if isinstance(settings, dict) else None
    if not isinstance(bindings, list):
        raise CloudFactError(f"GET {path}/settings answered no list of bindings; cannot tell what Worker {script} "
                             "prunes D1 by")
    retention = {b["name"]: str(b.get("text")) for b in bindings if isinstance(b, dict)
                 and b.get("type") == "plain_text" and str(b.get("name")).startswith("RETENTION_")}
    return WorkerCrons(script, tuple(" ".join(s["cron"].split()) for s in schedules), retention)


def _read_script(api: CloudflareApi, account: str, spec: StackSpec, path: str) -> Any:
    script = spec.api.script_name
    try:
        return api.call("GET", path)
    except CloudflareNotFound:
        raise CloudFactError(f"Cloudflare account {account} has no Worker named {script}: `pulumi up --stack "
                             f"{spec.name}` deploys it") from None
    except CloudflareAuthError as exc:
        raise CloudFactError(f"reading Worker {script}'s Cron Triggers and settings was refused (HTTP "
                             f"{exc.status}): give {CLOUDFLARE_TOKEN_ENV} the Workers Scripts Read permission on "
                             f"account {account}") from None


# -- RunPod --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EndpointState:
    """One role's endpoint as RunPod reports it. Of the env only WORKFLOW_VERSION is kept: the rest
    holds the R2 credentials."""

    stack: str
    role: str
    endpoint_id: str
    name: str
    image: str | None
    pinned: str | None
    workflow_version: str | None
    network_volumes: tuple[str, ...]
    workers_max: int
    declared_workers_max: int
    release_version: int | None
    rollout_in_progress: bool
    percent_on_latest: int
    workers_total: int
    stale_workers: int
    health: Mapping[str, Any] | None = None
    health_error: str | None = None
    registry: str | None = None  # the registry credential id RunPod pulls the image with

    @property
    def idle_scaled_down(self) -> bool:
        return self.workers_max < self.declared_workers_max and self.workers_max <= IDLE_SCALED_MAX

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "idle_scaled_down": self.idle_scaled_down}


def find_endpoint(control: ControlPlaneClient, name: str, stack: str) -> Endpoint:
    matches = [e for e in control.list_endpoints() if e.name == name]
    if not matches:
        raise CloudFactError(f"RunPod has no endpoint named {name} (stack {stack}): `pulumi up --stack {stack}` "
                             "creates it")
    if len(matches) > 1:
        raise CloudFactError(f"RunPod has {len(matches)} endpoints named {name} ({', '.join(e.id for e in matches)})"
                             f"; stack {stack} owns one: delete the others")
    return matches[0]


def read_endpoint(control: ControlPlaneClient, data_plane: Callable[[str], DataPlaneClient], spec: StackSpec,
                  pinned: str | None) -> EndpointState:
    ep = find_endpoint(control, spec.endpoint.name, spec.name)
    history = control.list_releases(ep.id)
    workers = control.list_workers(ep.id)
    health, health_error = None, None
    try:
        with data_plane(ep.id) as plane:
            h = plane.health()
        health = {"jobs": dict(h.jobs), "workers": dict(h.workers)}
    except GoldgateError as exc:  # /health is a note, not a line: a failure is reported, not fatal
        health_error = str(exc)
    return EndpointState(
        stack=spec.name, role=spec.role, endpoint_id=ep.id, name=ep.name, image=ep.image, pinned=pinned,
        workflow_version=ep.env.get("WORKFLOW_VERSION"), network_volumes=tuple(ep.network_volumes),
        workers_max=ep.workers_max, declared_workers_max=spec.endpoint.workers_max,
        release_version=history.endpoint_version, rollout_in_progress=history.rollout.in_progress,
        percent_on_latest=history.rollout.percent_on_latest, workers_total=history.rollout.workers_total,
        stale_workers=len(workers.stale), health=health, health_error=health_error, registry=ep.registry)


def endpoint_notes(state: EndpointState, spec: StackSpec) -> list[str]:
    """What the operator should know about an endpoint beyond the checklist's lines."""
    who = f"{state.role.upper()} endpoint {state.name} ({state.endpoint_id})"
    notes = []
    if state.pinned and state.image != state.pinned:
        notes.append(f"{who} runs {state.image}, but stacks/Pulumi.{spec.name}.yaml pins {state.pinned}: "
                     # Pulumi's state still holds the pin (the endpoint was patched around it): only a refresh
                     # shows the drift to `pulumi up`. `goldgate deploy` needs a new image and never takes PROD.
                     f"restore the pin (`pulumi up --refresh --stack {spec.name}`) or find who patched the endpoint")
    if state.workflow_version != spec.workflow_version:
        notes.append(f"{who} has WORKFLOW_VERSION={state.workflow_version!r}, the stack file says "
                     f"{spec.workflow_version!r}")
    if state.idle_scaled_down:
        notes.append(f"{who}: RunPod scaled max workers down to {state.workers_max} (declared "
                     f"{state.declared_workers_max}) after days without requests; `pulumi up --refresh --stack "
                     f"{spec.name}` restores it")
    elif state.workers_max != state.declared_workers_max:
        notes.append(f"{who}: max workers {state.workers_max}, declared {state.declared_workers_max}")
    registry_note = _registry_note(who, state.registry, spec)
    if registry_note:
        notes.append(registry_note)
    if state.rollout_in_progress or state.stale_workers:
        notes.append(f"{who}: release v{state.release_version} rolling out, {state.percent_on_latest}% of "
                     f"{state.workers_total} workers on it, {state.stale_workers} stale")
    if state.health_error:
        notes.append(f"{who}: /health unreachable: {state.health_error}")
    elif state.health is not None:
        notes.append(f"{who}: /health: {_health_note(state.health, state, spec)}")
    return notes


def _health_note(counters: Mapping[str, Any], state: EndpointState, spec: StackSpec) -> str:
    """/health read as `goldgate stuck` reads it (why jobs wait, and what to do), not as raw counters; the
    counters stay in the JSON (`health`)."""
    from goldgate.ops.stuck import WAITING_CAUSES, diagnose
    from goldgate.runpod.jobs import Health

    health = Health(jobs=dict(counters["jobs"]), workers=dict(counters["workers"]))
    cause, lines = diagnose(health, workers_max=state.workers_max, gpu_pools=spec.endpoint.gpu_pools,
                            stack=spec.name, target="cloud")
    if cause in WAITING_CAUSES:
        return "; ".join(lines)
    w = health.worker_count
    return (f"no job waits for a worker ({health.in_progress} in progress; workers {w('running')} "
            f"running, {w('idle')} idle, {w('initializing')} initializing, {health.throttled} throttled, "
            f"{health.unhealthy} unhealthy)")


def _registry_note(who: str, registry: str | None, spec: StackSpec) -> str | None:
    """Where the endpoint's registry credential differs from what the stack file declares."""
    declared = spec.endpoint.registry_credential_id
    if declared is not None and registry != declared:
        now = f"pulls with registry credential {registry}" if registry else "names no registry credential"
        return (f"{who} {now}, but stacks/Pulumi.{spec.name}.yaml declares {declared}: RunPod cannot pull a private "
                f"image without it; `pulumi up --refresh --stack {spec.name}` restores it")
    if spec.endpoint.manage_registry_credential and registry is None:
        return (f"{who} names no registry credential, but goldgate manages one for stack {spec.name}: RunPod cannot "
                f"pull a private image; `pulumi up --refresh --stack {spec.name}` restores it")
    if not spec.endpoint.pulls_privately and registry is not None:
        return (f"{who} pulls with registry credential {registry}, which stacks/Pulumi.{spec.name}.yaml does not "
                f"declare: the next `pulumi up` removes it; declare it as endpoint.registry_credential_id to keep it")
    return None


def observed_spec(spec: StackSpec, state: EndpointState) -> StackSpec:
    """The spec as the cloud runs it: the checks judge WORKFLOW_VERSION and network volumes from the
    endpoint itself, not from what the file declares."""
    endpoint = dataclasses.replace(spec.endpoint, network_volume_id=",".join(state.network_volumes) or None)
    return dataclasses.replace(spec, workflow_version=state.workflow_version or "", endpoint=endpoint)


def running_image(pinned: str | None, state: EndpointState | None) -> str | None:
    """What the checklist judges as the role's image: a tag pin is the fault to report; otherwise the
    endpoint's own image (equal to the pin when healthy); nothing when there is no endpoint."""
    if pinned and not is_digest_ref(pinned):
        return pinned
    if state is None:
        return None
    return state.image


# -- D1 ------------------------------------------------------------------------------------------

class _D1Rows:
    def __init__(self, d1: D1Client, database_id: str) -> None:
        self.d1, self.database_id = d1, database_id

    def all(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return self.d1.query(self.database_id, sql, list(params))

    def one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any]:
        rows = self.all(sql, params)
        return rows[0] if rows else {}


def _golden_result_checks(golden: Mapping[str, Any] | None) -> tuple[int, list[str]]:
    checks = [c for case in (golden or {}).get("cases") or [] for c in case.get("checks") or []
              if str(c.get("name", "")).endswith(".content_type")]
    return len(checks), [f"{c['name']}: {c.get('detail')}" for c in checks if not c.get("passed")]


def read_webhook_evidence(db: _D1Rows, stack: str, jobs: JobFacts | None,
                          golden: Mapping[str, Any] | None) -> tuple[LiveFacts | None, str]:
    """Idempotency from what D1 already recorded, in place of a live replay.

    Replaying a webhook into a cloud stack would act on a real job, so the checklist never does it.
    The record shows the same thing: deliveries that arrived again or late were kept with applied=0
    and their outcome; no job took a non-terminal delivery after its terminal one; every terminal
    job's job_metrics row agrees with it. With no repeated delivery on record yet there is nothing to
    show, and the line is n/a with that reason."""
    reason = (f"cloud target: no webhook is replayed into {stack} from a checklist run (it would act on a live "
              "job); idempotency is judged on D1's webhook_deliveries")
    ignored = {r["outcome"]: r["n"] for r in db.all(
        "SELECT outcome, count(*) AS n FROM webhook_deliveries WHERE applied = 0 GROUP BY outcome")}
    terminal = ", ".join(f"'{s}'" for s in _TERMINAL)
    late = [r["job_id"] for r in db.all(
        "SELECT DISTINCT t.job_id AS job_id FROM webhook_deliveries t JOIN webhook_deliveries n "
        f"ON n.job_id = t.job_id WHERE t.applied = 1 AND n.applied = 1 AND t.runpod_status IN ({terminal}) "
        f"AND n.runpod_status NOT IN ({terminal}) AND n.received_at > t.received_at LIMIT 10")]
    try:
        disagree = [r["id"] for r in db.all(
            "SELECT j.id AS id FROM jobs j JOIN job_metrics m ON m.job_id = j.id WHERE m.status <> j.status LIMIT 10")]
    except GoldgateError:
        disagree = []  # no job_metrics table: the percentiles line reports it
    problems = ([f"jobs that took a non-terminal delivery after their terminal one: {late}"] if late else []) + (
        [f"jobs whose job_metrics status disagrees with the job: {disagree}"] if disagree else [])
    if not problems and not ignored:
        return None, f"{reason}; D1 records no repeated or out-of-order delivery yet to show it"
    total = sum(ignored.values())
    replay_detail = ("read-only (D1): " + "; ".join(problems) if problems else
                     f"read-only (D1 webhook_deliveries): {total} repeated or late deliveries recorded and ignored "
                     f"(applied=0: {', '.join(f'{k} {v}' for k, v in sorted(ignored.items()))}); no job took a "
                     "non-terminal delivery after its terminal one; job_metrics agrees with every terminal job")
    completed = (jobs.by_status.get("completed", 0) if jobs else 0)
    undelivered = jobs.completed_without_delivery if jobs else 0
    status_ok = completed > 0 and not undelivered
    status_detail = (f"read-only (D1): {completed} completed jobs, each completed by an applied COMPLETED "
                     "delivery; GET /api/status answers from that row" if status_ok else
                     f"read-only (D1): {completed} completed jobs, {undelivered} without an applied COMPLETED delivery")
    n, bad = _golden_result_checks(golden)
    result_ok = n > 0 and not bad
    result_detail = (f"the golden run downloaded {n} result(s) through /api/result/:key (no download from {stack} by "
                     "the checklist)" if result_ok else
                     "; ".join(bad[:3]) or "no golden result downloads to show, and the checklist downloads nothing "
                     f"from {stack}")
    return LiveFacts(not problems, replay_detail, status_ok, status_detail, result_ok, result_detail), reason


# -- the image's models ---------------------------------------------------------------------------

def image_models_from_ledger(ledger: tuple[Any, ...] | None, image: str | None, manifest_sha256: str,
                             manifest_models: int) -> ImageModels:
    """A registry image's files cannot be listed from here; its build can. The build records the
    models.yaml hash the image baked (the Dockerfile ADDs each entry, checksummed); when it is this
    checkout's models.yaml, the workflow/manifest check (models_match) speaks for the image."""
    if not image:
        return ImageModels(image="(none)", missing=("the stack runs no image",), checked=0)
    builds = [e for e in ledger or () if e.kind == "build" and e.get("image") == image]
    if not builds:
        why = (f"the ledger records no build of {image}, so what it bakes is unknown; release images built by "
               "`goldgate build`")
        return ImageModels(image, (why,), 0)
    baked = builds[-1].get("models_sha256")
    if baked != manifest_sha256:
        why = (f"{image} was built from models.yaml sha256 {str(baked)[:12]}, this checkout's is "
               f"{manifest_sha256[:12]}: rebuild (`goldgate build`) or check out its commit")
        return ImageModels(image, (why,), 0)
    return ImageModels(image, (), manifest_models)


# -- gathering -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CloudReading:
    """The facts for the checklist, plus what the cloud reported that no checklist line judges."""

    facts: Facts
    endpoints: Mapping[str, EndpointState]   # role -> endpoint
    database_id: str | None
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"endpoints": {r: e.to_dict() for r, e in self.endpoints.items()}, "database_id": self.database_id,
                "notes": list(self.notes)}


def _attempt(what: str, fn: Callable[[], Any]) -> tuple[Any, str | None]:
    try:
        return fn(), None
    except (GoldgateError, OSError, ValueError) as exc:
        return None, f"{what}: {exc}"
    except (KeyError, TypeError) as exc:  # an API answered rows without the columns asked for
        return None, f"{what}: unexpected answer ({type(exc).__name__}: {exc})"


def stack_pair(stack: str, the_spec: StackSpec, stacks_dir: Path = STACKS_DIR) -> dict[str, str | None]:
    """role -> stack name: the checked stack, and the other role's file (Pulumi.<role>.yaml first)."""
    pair: dict[str, str | None] = {the_spec.role: stack}
    for role in ROLES:
        if role in pair:
            continue
        pair[role] = None
        for name in [role, *cloud_stack_names(stacks_dir)]:
            if name == stack or not (stacks_dir / f"Pulumi.{name}.yaml").is_file():
                continue
            try:
                if load_cloud_stack(name, stacks_dir)[0].role == role:
                    pair[role] = name
                    break
            except SpecError:
                if name == role:  # the role's own file is broken: judge it as that role's error
                    pair[role] = name
                    break
    return pair


def read_cloud(stack: str, credentials: CloudCredentials, *, home: Path, stacks_dir: Path = STACKS_DIR,
               reports_dir: Path | None = None, logs_dir: Path | None = None,
               cloudflare_api_base: str = DEFAULT_API_BASE, database_id: str | None = None,
               progress: Progress = _quiet, now: datetime | None = None) -> CloudReading:
    """Every fact for `goldgate checklist <stack> --target cloud`, read-only."""
    from goldgate.ops.polling_scan import scan_tree
    from goldgate.release.build import manifest_sha256
    from goldgate.release.history import on_target
    from goldgate.release.ledger import Ledger
    from goldgate.release.report import REPORTS_DIR, load_report_of, report_sha256

    the_spec, _ = load_cloud_stack(stack, stacks_dir)  # an unknown or invalid stack is refused right away
    account = cloudflare_account(the_spec)
    database_id = checked_database_id(database_id)
    spec_map, spec_errors, images, endpoints, notes = _read_endpoints(stack, the_spec, credentials, stacks_dir,
                                                                      progress)

    progress("reading the ledger and the golden report")
    # One state dir may hold local releases too (the README's first command): they are not the cloud's.
    ledger, ledger_error = _attempt("ledger", lambda: tuple(on_target(Ledger(home).entries(), "cloud")))
    golden_path = (reports_dir or REPORTS_DIR) / "latest.json"
    golden, golden_error = _attempt("golden report", lambda: load_report_of(golden_path, "cloud"))
    # As the local checklist: the gate's judgement of which suite the runs ran (a --cases-dir subset is not it).
    golden_sha256, _ = _attempt("golden report", lambda: report_sha256(golden_path)) if golden else (None, None)
    golden_suite, golden_suite_error = read_golden_suite()
    # The pinned image's lines judge its jobs since the ledger change that put it on this stack (as locally).
    window = serving_window(ledger, stack, the_spec.role, images.get(the_spec.role))
    windows = {window.image: window} if window else {}

    d1 = _read_d1(stack, the_spec, credentials, account, cloudflare_api_base, database_id, windows, golden,
                  progress)
    database_id = d1.database_id
    notes.extend(d1.notes)

    progress("checking workflows against models.yaml and the Dockerfile")
    consistency, docker_problems, roots, consistency_error = attempt_worker_facts()
    image_models, image_models_error = _attempt("image models", lambda: image_models_from_ledger(
        ledger, images.get(the_spec.role), manifest_sha256(WORKER_DIR), _manifest_models()))
    logs, logs_error = _read_cloud_logs(logs_dir, windows, home)
    drill, drill_error = _cloud_drill(home, stack, database_id)
    prune, prune_error = _cloud_prune(home, stack, database_id)
    facts = Facts(stack=stack, now=now or datetime.now(UTC), target="cloud", specs=spec_map, spec_errors=spec_errors, images=images,
                  ledger=ledger, ledger_error=ledger_error, golden=golden, golden_error=golden_error,
                  golden_path=str(golden_path), golden_sha256=golden_sha256, golden_suite=golden_suite,
                  golden_suite_error=golden_suite_error, metrics=d1.metrics, metrics_error=d1.metrics_error,
                  jobs=d1.jobs, jobs_error=d1.jobs_error, consistency=consistency,
                  consistency_error=consistency_error, dockerfile_problems=docker_problems, image_models=image_models,
                  image_models_error=image_models_error, model_roots=roots, logs=logs, logs_error=logs_error,
                  polling=tuple(scan_tree(SERVICE_DIR)), live=d1.live, live_reason=d1.live_reason, drill=drill,
                  drill_error=drill_error, migrations=d1.migrations, migrations_error=d1.migrations_error,
                  prune=prune, prune_error=prune_error, worker_crons=d1.worker_crons,
                  worker_crons_error=d1.worker_crons_error, room=d1.room, room_error=d1.room_error)
    return CloudReading(facts=facts, endpoints=endpoints, database_id=database_id, notes=tuple(notes))


def _read_endpoints(stack: str, the_spec: StackSpec, credentials: CloudCredentials, stacks_dir: Path,
                    progress: Progress) -> tuple[dict[str, StackSpec], dict[str, str], dict[str, str | None],
                                                 dict[str, EndpointState], list[str]]:
    """The RunPod endpoint of each role's stack: (role -> the spec as RunPod serves it, role -> why it could not be
    judged, role -> the image it runs, role -> the endpoint, notes no checklist line judges)."""
    spec_map: dict[str, StackSpec] = {}
    spec_errors: dict[str, str] = {}
    images: dict[str, str | None] = {}
    endpoints: dict[str, EndpointState] = {}
    notes: list[str] = []
    for role, name in stack_pair(stack, the_spec, stacks_dir).items():
        if name is None:
            spec_errors[role] = f"{stacks_dir} has no {role} stack file (Pulumi.{role}.yaml)"
            continue
        try:
            spec, pinned = load_cloud_stack(name, stacks_dir)
        except SpecError as exc:
            # Judged by the lines it concerns (a network volume in PROD's file, say); the pin still says
            # what the pipeline put there, as the local target's pinned image does.
            spec_errors[role] = str(exc)
            images[role] = raw_pin(name, stacks_dir)
            continue
        if pinned and not is_digest_ref(pinned):
            notes.append(f"stacks/Pulumi.{name}.yaml pins {pinned!r}, a tag: RunPod may keep serving a cached image "
                         "for it; pin repo@sha256:<digest>")
        key = credentials.runpod_api_keys.get(name)
        if key is None:
            raise GoldgateError(f"{RUNPOD_KEY_ENV} is not set for stack {name}")
        assert spec.cloud is not None  # load_pulumi guarantees the cloud block
        base = spec.cloud.runpod_endpoint_base
        progress(f"reading RunPod endpoint {spec.endpoint.name} ({name})")
        try:
            with ControlPlaneClient(key, spec.cloud.runpod_api_base) as control:
                state = read_endpoint(control, lambda eid, k=key, b=base: DataPlaneClient(k, eid, b), spec, pinned)
        except GoldgateError as exc:
            spec_errors[role] = str(exc) if name == role else f"{name}: {exc}"  # the line names the role
            images[role] = running_image(pinned, None)
            continue
        endpoints[role] = state
        spec_map[role] = observed_spec(spec, state)
        images[role] = running_image(pinned, state)
        notes.extend(endpoint_notes(state, spec))
    if "staging" in endpoints and "prod" in endpoints and endpoints["staging"].endpoint_id == \
            endpoints["prod"].endpoint_id:
        spec_errors["prod"] = f"STAGING and PROD resolve to the same RunPod endpoint {endpoints['prod'].endpoint_id}"
        spec_map.pop("prod", None)
    return spec_map, spec_errors, images, endpoints, notes


@dataclass(frozen=True)
class _D1Facts:
    """What a cloud stack's D1 database and its Worker's Cron Triggers say, each fact with why it could not be read."""

    database_id: str | None
    metrics: Any
    metrics_error: str | None
    jobs: JobFacts | None
    jobs_error: str | None
    migrations: Any
    migrations_error: str | None
    room: DatabaseRoom | None
    room_error: str | None
    live: LiveFacts | None
    live_reason: str | None
    worker_crons: WorkerCrons | None
    worker_crons_error: str | None
    notes: tuple[str, ...]


def _read_d1(stack: str, the_spec: StackSpec, credentials: CloudCredentials, account: str, cloudflare_api_base: str,
             database_id: str | None, windows: Mapping[str, ServingWindow], golden: Any, progress: Progress) -> _D1Facts:
    """The job figures, migrations, size and webhook evidence of the stack's D1 database (found by its name unless
    given), and the Cron Triggers its Worker runs when the stack file declares retention."""
    from goldgate.ops.metrics_report import report_from_d1

    metrics = jobs = live = migrations = worker_crons = room = None
    metrics_error = jobs_error = migrations_error = worker_crons_error = room_error = None
    live_reason = f"cloud target: D1 of {stack} not read"
    notes: list[str] = []
    api = CloudflareApi(credentials.cloudflare_api_token, cloudflare_api_base)
    try:
        d1 = D1Client(api, account)
        if database_id is None:
            database_id, db_error = _attempt("D1", lambda: find_database(d1, the_spec.database.name))
        else:
            db_error = None
        if database_id is None:
            metrics_error = jobs_error = migrations_error = room_error = db_error
            live_reason = f"cloud target: {db_error}"
        else:
            progress(f"reading job_metrics, jobs and webhook_deliveries from D1 {the_spec.database.name}")
            rows = _D1Rows(d1, database_id)
            metrics, metrics_error = _attempt("metrics", lambda: report_from_d1(d1, database_id, stack))
            got, jobs_error = _attempt("jobs", lambda: job_facts_from_rows(rows, windows))
            if got:
                jobs, metrics_note = got
                if metrics_note:
                    notes.append(metrics_note)
            migrations, migrations_error = _attempt("migrations", lambda: migration_facts_from_rows(rows))
            room, room_error = _attempt("D1 size", lambda: read_d1_room(
                d1, database_id, the_spec.database.name))
            evidence, evidence_error = _attempt("webhook deliveries",
                                                lambda: read_webhook_evidence(rows, stack, jobs, golden))
            live, live_reason = evidence if evidence else (None, f"cloud target: {evidence_error}")
        if the_spec.database.retention is not None:  # the file only declares it: confirm `pulumi up` deployed it
            progress(f"reading the Cron Triggers of Worker {the_spec.api.script_name}")
            worker_crons, worker_crons_error = _attempt("Cron Triggers", lambda: read_worker_crons(
                api, account, the_spec))
    finally:
        api.close()
    return _D1Facts(database_id=database_id, metrics=metrics, metrics_error=metrics_error, jobs=jobs,
                    jobs_error=jobs_error, migrations=migrations, migrations_error=migrations_error, room=room,
                    room_error=room_error, live=live, live_reason=live_reason, worker_crons=worker_crons,
                    worker_crons_error=worker_crons_error, notes=tuple(notes))


def _read_cloud_logs(logs_dir: Path | None, windows: Mapping[str, ServingWindow], home: Path) -> tuple[Any, str | None]:
    """The exported log lines judged with the release commands' own log, or why there are none to judge."""
    from goldgate.release.ledger import RELEASE_LOG

    if logs_dir is None:
        return None, ("cloud logs are not readable through the RunPod or D1 APIs: export the API "
                      "Worker's and the workers' JSON log lines (Workers Logs / Logpush, RunPod endpoint "
                      "logs) into a directory and pass --logs-dir")
    # The cloud release commands write <home>/logs/release.jsonl too: judged with the exported lines.
    return _attempt("logs", lambda: read_log_facts(logs_dir, windows=windows, also=(home / RELEASE_LOG,)))


def _cloud_drill(home: Path, stack: str, database_id: str | None) -> tuple[Any, str | None]:
    """The last cloud DR drill of `stack`, when it exported this stack's database; else why there is no evidence."""
    from goldgate.ops import dr

    drill, drill_error = _attempt("DR drill", lambda: dr.latest_drill(home, stack, "cloud"))
    if drill is None and drill_error is None:
        drill_error = (f"no cloud DR drill recorded for {stack} (a local drill is no evidence for D1); run "
                       f"`goldgate dr-drill {stack} --target cloud --database-id <uuid>`")
    elif drill is not None and database_id and drill.get("database_id") is not None \
            and str(drill.get("database_id")).lower() != database_id.lower():
        # `--database-id` is typed by hand, in either case: a drill of another database proves nothing about this
        # stack's (the prune record is compared alike).
        drill, drill_error = None, (f"the last DR drill of {stack} exported D1 {show(drill.get('database_id'))}, not "
                                    f"{stack}'s database {database_id}: it is not evidence; run `goldgate dr-drill "
                                    f"{stack} --target cloud --database-id {database_id}`")
    return drill, drill_error


def _cloud_prune(home: Path, stack: str, database_id: str | None) -> tuple[Any, str | None]:
    """The last recorded cloud prune of `stack`, when it ran on this stack's database; else why it is no evidence."""
    from goldgate.ops import retention

    prune, prune_error = _attempt("prune record", lambda: retention.latest_prune(home, stack, "cloud"))
    if prune is not None and database_id and str(prune.get("database")).lower() != database_id.lower():
        prune, prune_error = None, (f"the last recorded prune of {stack} ran on D1 {show(prune.get('database'))}, not "
                                    f"{stack}'s database {database_id}: it is not evidence")
    return prune, prune_error


def gather_cloud(stack: str, credentials: CloudCredentials, *, home: Path, stacks_dir: Path = STACKS_DIR,
                 reports_dir: Path | None = None, logs_dir: Path | None = None,
                 cloudflare_api_base: str = DEFAULT_API_BASE, database_id: str | None = None,
                 progress: Progress = _quiet, now: datetime | None = None) -> Facts:
    """The cloud twin of `checklist_facts.gather_local`: the same Facts, read through the APIs."""
    return read_cloud(stack, credentials, home=home, stacks_dir=stacks_dir, reports_dir=reports_dir,
                      logs_dir=logs_dir, cloudflare_api_base=cloudflare_api_base, database_id=database_id,
                      progress=progress, now=now).facts


def _manifest_models() -> int:
    from images.worker.manifest import load_manifest

    return len(load_manifest(WORKER_DIR / "models.yaml").models)
