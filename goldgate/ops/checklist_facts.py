"""The facts the readiness checklist judges, each read from the component that owns it.

`Facts` is a plain frozen value so a test can change one fact (`dataclasses.replace`) and see
exactly one line of the checklist turn red. `gather_local` reads them for a local deployment:
the stack specs (goldgate.spec), pinned images (LocalPlatform), the ledger and golden report
(goldgate.release), job_metrics and jobs (the stack's SQLite), the workflow/model manifest check
and the Dockerfile (images/worker), the logs (against docs/logging-schema-v1.json), a static scan
of service/ for polling, the latest DR drill, the room on the database's disk, and, when the stack
runs, a live webhook replay.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from goldgate import spec as specs
from goldgate.bounded_http import tls_context
from goldgate.errors import GoldgateError
from goldgate.ops.fingerprint import connect_read_only
from goldgate.spec import StackSpec

REPO = Path(__file__).resolve().parents[2]
WORKER_DIR = REPO / "images" / "worker"
SERVICE_DIR = REPO / "service"
LOG_SCHEMA = REPO / "docs" / "logging-schema-v1.json"
MAX_LOG_LINES = 200_000
MAX_LOG_LINE_CHARS = 1024 * 1024  # a v1 line is a few hundred characters; a longer one is judged unread
# The newest lines say whether the image served now logs correctly: each log's end is judged, the rest is counted
# by size, never read. Of LOG_JUDGED_BYTES, half judges the last LOG_TAIL_FLOOR_BYTES of each log (the newest files
# first: every recent worker's log has its say), the rest the newest logs more deeply, up to LOG_TAIL_BYTES each.
# Schema validation runs at a few MB a second, so these bound the checklist however old the stack is.
LOG_TAIL_BYTES = 2 * 1024 * 1024
LOG_TAIL_FLOOR_BYTES = 32 * 1024
LOG_JUDGED_BYTES = 4 * 1024 * 1024
# A worker's start-up lines (models_loaded, preflight_failed) open its log: in a log longer than its judged end,
# its first LOG_HEAD_BYTES are read for them alone, the newest files first while LOG_HEAD_TOTAL_BYTES last.
LOG_HEAD_BYTES = 64 * 1024
LOG_HEAD_TOTAL_BYTES = 4 * 1024 * 1024
_STARTUP_EVENTS = ("models_loaded", "preflight_failed")


@dataclass(frozen=True)
class ServingWindow:
    """Since when the judged stack serves `image`: the ledger change that last put it there (PROD: the promotion or
    rollback whose smoke cases passed with it; STAGING: its `deploy`). The per-image lines count that image's jobs
    from `since` on: the jobs it failed while the stack was faulty, before the recovery that put it back, are not
    the release the stack serves now (the gate's error rate is scoped alike, from STAGING's deploy)."""

    image: str
    since: str      # as the service stores created_at (UTC, milliseconds, Z): text order is time order
    change: str     # the change in words: "promotion #16 at 2026-11-30T07:02:40.107Z"
    # The change that switched the stack TO `image` (STAGING: a deploy; PROD: a promotion's or rollback's intent),
    # when later changes only deployed it again (a redeploy, a promotion of the image PROD runs, a rollback --to it).
    # Such a change is no new RunPod release: the warm workers stay, and their start-up lines (`models_loaded`) come
    # before `since`. None: `since`, the change itself switched to the image.
    startup_since: str | None = None
    startup_change: str | None = None
    # The change the start-up lines count from found the stack running `image` already, put there by nothing the
    # ledger recorded (a deploy cut short that `goldgate up` completed, then deployed again to record it): its warm
    # workers may have started before it, and their `models_loaded` lines are the image's (LogFacts counts them).
    held_before: bool = False

    def to_words(self) -> str:
        return f"since {self.change}"

    def startup_words(self) -> str:
        """Since when the image's start-up lines count: its workers started since the switch to it."""
        if self.startup_change is None:
            return self.to_words()
        return f"since {self.startup_change} (then redeployed: {self.change})"


@dataclass(frozen=True)
class JobFacts:
    total: int = 0
    by_status: Mapping[str, int] = field(default_factory=dict)
    first_job_status: str | None = None
    cold_start_failures: int = 0
    completed_without_images: int = 0
    bad_results: tuple[str, ...] = ()
    # worker_image_tag -> its completed jobs without images, and -> its results that are not image/* with bytes:
    # the lines that judge the pinned image's jobs judge its results too.
    completed_without_images_by_image: Mapping[str, int] = field(default_factory=dict)
    bad_results_by_image: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    applied_webhooks: Mapping[str, int] = field(default_factory=dict)
    completed_without_delivery: int = 0
    metrics_completed: int = 0
    metrics_with_durations: int = 0
    metrics_missing_cost: int = 0         # completed with a run time yet no cost: the cost rule did not apply
    metrics_unmeasured: int = 0           # completed without a run time (RunPod gave none, or recovered from the
    missing_cost_jobs: tuple[str, ...] = ()  # store): nothing to price, by design
    mean_e2e_ms: float | None = None
    # worker_image_tag -> status -> jobs: the exit line judges the pinned image's jobs, not every image's ever.
    # A job RunPod never took names no image ('' here): the API's failure, not an image's.
    by_image_status: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    mean_e2e_ms_by_image: Mapping[str, float] = field(default_factory=dict)  # completed job_metrics, per image
    # worker_image_tag -> its first job ({id, status, error}): the image's first start is a cold start, however
    # many images ran before it; and -> its jobs that failed while the engine started ({n, id, error}: the newest).
    first_job_by_image: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cold_start_by_image: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Jobs RunPod never took (POST /run refused or unreachable: the API answered 502/503), and the newest job whose
    # submission ended ({id, created_at, error, refused}): whether POST /api/queue/create reaches RunPod now.
    submit_failures: int = 0
    last_submission: Mapping[str, Any] | None = None
    # worker_image_tag -> {count, errors} of its job_metrics rows, and `forgotten` (when any: those RunPod had no record
    # of when recovered): the error rate of the pinned image in `windows`
    # (only an image with a window has one here; without, the metrics report's all-time group is judged).
    metrics_by_image: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # worker_image_tag -> the window its per-image figures above were counted over (its other rows left out).
    windows: Mapping[str, ServingWindow] = field(default_factory=dict)


@dataclass(frozen=True)
class LogFacts:
    files: int = 0
    lines: int = 0
    invalid: tuple[str, ...] = ()
    invalid_count: int = 0
    jobs_missing_trace: tuple[str, ...] = ()
    jobs_without_context: tuple[str, ...] = ()
    job_ids: int = 0
    models_loaded: int = 0
    unjudged: int = 0            # non-empty lines past MAX_LOG_LINES: counted, not validated
    # worker_image_tag ('' when a line names none) -> start-up lines: the pinned image's workers are the ones
    # judged; an older image's `models_loaded` says nothing of the image RunPod starts now.
    models_loaded_by_image: Mapping[str, int] = field(default_factory=dict)
    preflight_failed_by_image: Mapping[str, int] = field(default_factory=dict)
    # worker_image_tag -> its `models_loaded` lines from before its window's start-up count began, for a window
    # `held_before` (the stack ran the image already): warm workers a redeploy kept, started before the ledger said.
    models_loaded_before_by_image: Mapping[str, int] = field(default_factory=dict)
    # worker_image_tag -> the window its start-up lines above were counted over (as JobFacts.windows).
    windows: Mapping[str, ServingWindow] = field(default_factory=dict)
    # What `lines` covers: the bytes read at the end of `files_judged` logs, of all `bytes_total` (see LOG_TAIL_BYTES).
    files_judged: int = 0
    bytes_judged: int = 0
    bytes_total: int = 0
    # The files judged from outside the stack's logs dir (read_log_facts' `also`), and how many of `lines` are theirs.
    also_files: tuple[str, ...] = ()
    also_lines: int = 0

    def judged_words(self) -> str:
        """What the judged lines are when not every line was read ("" when every one was): the newest of each log,
        and how much of the whole, so that "N lines valid" never reads as the whole log's verdict."""
        if self.bytes_judged >= self.bytes_total:
            return ""
        return (f"; judged: the newest {self.lines} lines, the end of each of the newest {self.files_judged} of "
                f"{self.files} logs (at most {_size(LOG_TAIL_BYTES)} of each): {_size(self.bytes_judged)} of "
                f"{_size(self.bytes_total)} (older lines are counted by size, not read)")


def _size(n: int) -> str:
    return next(f"{n / 1024 ** k:.1f} {unit}" for k, unit in ((3, "GB"), (2, "MB"), (1, "KB"), (0, "bytes"))
                if n >= 1024 ** k or k == 0)


@dataclass(frozen=True)
class LiveFacts:
    """What the running stack answered: a replayed webhook, the status endpoint, a result download."""

    replay_ok: bool | None   # None: no webhook was replayed, replay_detail says why
    replay_detail: str
    status_ok: bool
    status_detail: str
    result_ok: bool
    result_detail: str


@dataclass(frozen=True)
class ImageModels:
    image: str
    missing: tuple[str, ...]
    checked: int


@dataclass(frozen=True)
class MigrationFacts:
    """The stack database's d1_migrations against this checkout's migrations/."""

    newest: str                      # this checkout's newest migration
    missing: tuple[str, ...] = ()    # in migrations/, not applied
    unknown: tuple[str, ...] = ()    # applied, not in migrations/: a newer goldgate migrated the database
    host_running: bool = False       # local: a host serves it; one that lacks `missing` was started by an older goldgate


@dataclass(frozen=True)
class DatabaseRoom:
    """How much room the stack's database has to grow. Cloud: D1's size against its cap (D1 refuses
    writes past it). Local: SQLite has no cap, the disk under it has: the free space of the
    filesystem holding the file."""

    where: str                         # cloud: "D1 <name> (<uuid>)"; local: the database file's path
    size_bytes: int                    # the database's own size (local: the file and its WAL)
    cap_bytes: int | None = None       # cloud: D1's cap
    free_bytes: int | None = None      # local: free to this user on the filesystem (shutil.disk_usage)
    total_bytes: int | None = None     # local: that filesystem's size
    database_id: str | None = None     # cloud: the D1 uuid, for the prune command the line names


@dataclass(frozen=True)
class WorkerCrons:
    """The Cron Triggers Cloudflare runs on the stack's API Worker (cloud target), and the RETENTION_* settings its
    scheduled run prunes by: what `pulumi up` deployed, which the stack file's database.retention only declares."""

    script: str
    crons: tuple[str, ...]
    retention: Mapping[str, str] = field(default_factory=dict)   # RETENTION_* plain-text binding -> its text


@dataclass(frozen=True)
class CustomNodeLocks:
    """How each custom node of the checkout's images/worker/custom_nodes.yaml gets its Python dependencies: locked
    (`requirements: custom_nodes/<file>.txt`, hash-checked), none (`requirements: none`), or unlocked (its own
    requirements.txt, unpinned: each named with the command that makes its lock). `error`: the file, or a lock it
    names, does not load (`goldgate build` refuses it too)."""

    path: str
    locked: tuple[str, ...] = ()        # entry names
    no_requirements: tuple[str, ...] = ()
    unlocked: tuple[tuple[str, str], ...] = ()   # (entry described, the command that makes its lock)
    error: str | None = None


def read_custom_node_locks(path: Path | None = None) -> CustomNodeLocks:
    """The checkout's custom nodes and their dependency locks; never raises (a load failure is `error`)."""
    from images.worker.custom_nodes import NO_REQUIREMENTS, CustomNodesError, load_custom_nodes, lock_command

    path = path or WORKER_DIR / "custom_nodes.yaml"
    try:
        nodes = load_custom_nodes(path)
    except CustomNodesError as exc:
        return CustomNodeLocks(str(path), error=str(exc))
    return CustomNodeLocks(
        str(path),
        locked=tuple(e.name for e in nodes.entries if e.requirements not in (None, NO_REQUIREMENTS)),
        no_requirements=tuple(e.name for e in nodes.entries if e.requirements == NO_REQUIREMENTS),
        unlocked=tuple((e.described, lock_command(e)) for e in nodes.entries if not e.locked))


@dataclass(frozen=True)
class GoldenSuite:
    """The golden suite a promotion names (the checkout's scripts/golden-tests/cases): each case's id -> the digest
    of its definition (`cases.suite_digests`), and where it was read, as the gate's `report_cases` holds a golden run
    to it. A `golden --cases-dir <subset>` run is recorded as suite "full" too: only this tells it from the suite."""

    definitions: Mapping[str, str]
    where: str


@dataclass(frozen=True)
class Facts:
    stack: str
    now: datetime
    target: str = "local"
    specs: Mapping[str, StackSpec] = field(default_factory=dict)        # role -> spec
    spec_errors: Mapping[str, str] = field(default_factory=dict)        # role -> why it did not load
    images: Mapping[str, str | None] = field(default_factory=dict)      # role -> pinned image
    # local: role -> the image its running host serves (absent: down, or not said); a pin served with no deploy of it
    # in the ledger is a deploy cut short that `goldgate up` completed, not a pin by hand
    served: Mapping[str, str | None] = field(default_factory=dict)
    ledger: tuple[Any, ...] | None = None
    ledger_error: str | None = None
    golden: Mapping[str, Any] | None = None
    golden_error: str | None = None
    golden_path: str = ""
    golden_sha256: str | None = None                                    # of the report read as `golden`
    # The suite a golden run must have run to count as one (None: not read, as before: a run recorded as "full" does)
    golden_suite: GoldenSuite | None = None
    golden_suite_error: str | None = None
    metrics: Mapping[str, Any] | None = None
    metrics_error: str | None = None
    jobs: JobFacts | None = None
    jobs_error: str | None = None
    consistency: Any = None                                             # images.worker.manifest.ConsistencyReport
    consistency_error: str | None = None
    dockerfile_problems: tuple[str, ...] | None = None
    image_models: ImageModels | None = None
    image_models_error: str | None = None
    model_roots: tuple[str, ...] = ()
    logs: LogFacts | None = None
    logs_error: str | None = None
    polling: tuple[str, ...] = ()
    live: LiveFacts | None = None
    live_reason: str | None = None
    drill: Mapping[str, Any] | None = None
    drill_error: str | None = None
    migrations: MigrationFacts | None = None
    migrations_error: str | None = None
    # local: the other role's stack -> its database's migrations, while a host serves it (`goldgate release` needs it)
    peer_migrations: Mapping[str, MigrationFacts] = field(default_factory=dict)
    prune: Mapping[str, Any] | None = None
    prune_error: str | None = None
    worker_crons: WorkerCrons | None = None
    worker_crons_error: str | None = None
    room: DatabaseRoom | None = None
    room_error: str | None = None
    # Read from the checkout when the Facts are made, as the Dockerfile and models.yaml are: both targets' gatherers
    # (and a test's Facts) judge the same images/worker without each having to name it.
    custom_node_locks: CustomNodeLocks = field(default_factory=lambda: read_custom_node_locks())


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# -- readers, one per source ---------------------------------------------------------------------

class Rows(Protocol):
    """A read-only SQL source answering rows as dicts: the local SQLite or D1 over REST."""

    def all(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]: ...

    def one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any]: ...


class SqliteRows:
    def __init__(self, conn: sqlite3.Connection, source: Path) -> None:
        self.conn, self.source = conn, source
        conn.row_factory = sqlite3.Row

    def all(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        try:
            return [dict(r) for r in self.conn.execute(sql, tuple(params))]
        except sqlite3.DatabaseError as exc:
            raise GoldgateError(f"{self.source} cannot be read ({exc}); is it the stack's migrated database?") \
                from None

    def one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any]:
        rows = self.all(sql, params)
        return rows[0] if rows else {}


# The service's cold-start failure texts, as SQL LIKE patterns. "crashed while starting": the worker's ComfyDown when
# ComfyUI's process exited before it ever answered (images/worker/comfy_client.py), a start that failed outright.
_NOT_READY_LIKE = ("%not ready%", "%connection refused%", "%did not start%", "%waiting for comfyui%",
                   "%cold start%", "%crashed while starting%")
_COLD_FAILED = ("status IN ('failed', 'timed_out') AND ("
                + " OR ".join("lower(error) LIKE ?" for _ in _NOT_READY_LIKE) + ")")
_TAG = "coalesce(worker_image_tag, '')"
# A job RunPod took and forgot (service/recover.py records it failed with this error, under the image's tag).
FORGOTTEN_PREFIX = "RunPod has no record of job"
# A job RunPod never took: service/jobs.py fail_submission marks its last transition so.
_SUBMIT_FAILED = "last_delivery LIKE 'submit:%'"

_RESULTS_ARRAY = "CASE WHEN json_valid(j.results_json) AND json_type(j.results_json) = 'array' " \
                 "THEN j.results_json ELSE '[]' END"


def serving_window(ledger: Iterable[Any] | None, stack: str, role: str | None,
                   image: str | None) -> ServingWindow | None:
    """The ledger change that last put `image` on `stack` (see ServingWindow), or None when the ledger records none
    (an image pinned by hand: its every job is judged). PROD: the newest promotion or rollback whose smoke cases
    passed with it, counted from its intent (its smoke jobs ran before its outcome was written); STAGING: its newest
    deploy, as the gate's error rate counts. Under a ledger key only an authenticated entry opens a window: a forged
    later one would hide the failures before it."""
    from goldgate.release.history import VERIFIED_OUTCOMES
    from service.metrics import MetricsError, normalize_since

    if not image or ledger is None or role is None:
        return None
    entries = list(ledger)
    if role == "prod":
        change = next((e for e in reversed(entries) if e.kind in ("promotion", "rollback")
                       and e.get("phase") == "outcome" and e.get("stack", "prod") == stack
                       and e.get("outcome") in VERIFIED_OUTCOMES and e.get("prod_image") == image and e.authentic),
                      None)
        start = change if change is None else next(
            (e for e in entries if e.seq == change.get("intent_seq") and e.kind == change.kind
             and e.get("phase") == "intent" and e.authentic), change)
    else:
        start, change = _deployed(entries, stack, image)
    if change is None or start is None:
        return None
    try:
        since = normalize_since(start.ts)
    except MetricsError:
        return None
    if since is None:
        return None
    outcome = "" if change is start else (f" (its rollout not confirmed; deployed again as #{change.seq})"
                                          if change.kind == "deploy" else f" ({change.get('outcome')} as #{change.seq})")
    switch = _prod_switched_to(entries, start, stack, image) if role == "prod" else \
        _switched_to(entries, start, stack, image)
    startup_since = startup_change = None
    # A deploy's entry is written once its rollout is confirmed, and the image's first workers start during the
    # rollout: their start-up lines count from when it began (`started_at`; an older ledger's deploys have none).
    began = switch.get("started_at") if switch.kind == "deploy" and isinstance(switch.get("started_at"), str) else None
    if switch is not start or began:
        try:
            startup_since = normalize_since(began or switch.ts)
        except MetricsError:
            startup_since = None
        if switch is not start and startup_since:
            startup_change = f"{_change_name(switch)} #{switch.seq} at {switch.ts}"
    return ServingWindow(image=image, since=since, change=f"{_change_name(start)} #{start.seq} at {start.ts}{outcome}",
                         startup_since=startup_since, startup_change=startup_change,
                         held_before=switch.get("before") == image)


def _change_name(entry: Any) -> str:
    return "retried promotion" if entry.kind == "promotion" and entry.get("retry_rejected") else entry.kind


def _deployed(entries: list[Any], stack: str, image: str) -> tuple[Any, Any]:
    """The deploy of `stack` the window of `image` starts at, as the gate's error rate starts it
    (goldgate.release.promote._deployed_at), and the newest authentic deploy of `image`: the same one, unless the
    deploys of `image` just before it were applied with their rollout not confirmed (the first of them put the image
    there already; the later ones only deployed it again): then the first of those. (None, None): no deploy of it."""
    deploys = [e for e in entries if e.kind == "deploy" and e.get("stack") == stack and e.authentic]
    newest = next((i for i in range(len(deploys) - 1, -1, -1) if deploys[i].get("after") == image), None)
    if newest is None:
        return None, None
    n = newest
    while n > 0 and deploys[n - 1].get("after") == image and deploys[n - 1].get("rollout_confirmed") is False:
        n -= 1
    return deploys[n], deploys[newest]


def _switched_to(entries: list[Any], change: Any, stack: str, image: str) -> Any:
    """The deploy of `stack` that last switched it to `image` from another image (or from none), `change` or one
    before it: each deploy whose `before` is `image` redeployed what the stack already ran, so the one before it, if
    it put `image` there (and is authentic), is the switch. A redeploy of the same image keeps RunPod's release and
    its warm workers; a stack switched away and back, or pinned by hand between two deploys, started anew."""
    switch = change
    for entry in reversed(entries[:entries.index(change)]):
        if entry.kind != "deploy" or entry.get("stack") != stack:
            continue
        if switch.get("before") != image or entry.get("after") != image or not entry.authentic:
            break
        switch = entry
    return switch


def _prod_switched_to(entries: list[Any], start: Any, stack: str, image: str) -> Any:
    """The promotion or rollback intent that last switched PROD (`stack`) to `image` from another image: `start` (the
    intent of the change the window counts from) or one before it. Read back from `start` through PROD's changes:
    while every entry shows `image` pinned (an outcome's `after`; an intent's `before`, and a rollback's `served`),
    an intent that deployed `image` again kept RunPod's release and its warm workers; the one whose stack ran another
    image is the switch. A failed promotion records its automatic rollback's intent and outcome between its own: the
    rollback's intent (its stack then ran the candidate) is that switch, met before the promotion's intent. An intent
    of another image is passed only when its deploy left the pin where it was (`deploy_failed`, nothing applied); any
    other entry that does not show `image` pinned, or does not authenticate under the ledger key, ends the walk."""
    def ran_image(intent: Any) -> bool:
        return intent.get("before") == image and intent.get("served", image) in (image, None)

    if not ran_image(start):
        return start
    outcomes = {(e.kind, e.get("intent_seq")): e for e in entries if e.kind in ("promotion", "rollback")
                and e.get("phase") == "outcome" and e.get("stack", "prod") == stack and e.authentic}
    switch = start
    for entry in reversed(entries[:entries.index(start)]):
        if entry.kind not in ("promotion", "rollback") or entry.get("stack", "prod") != stack \
                or entry.get("phase") not in ("intent", "outcome"):
            continue   # a refused promotion changed nothing; smoke runs and other stacks say nothing of the pin
        if not entry.authentic:
            break
        if entry.get("phase") == "outcome":
            if entry.get("after") != image:
                break   # the stack ran another image then: the pin moved to `image` since, unrecorded
            continue
        if entry.get("image") == image:
            switch = entry
            if not ran_image(entry):
                break
            continue
        done = outcomes.get((entry.kind, entry.seq))
        if not (ran_image(entry) and done is not None and done.get("outcome") == "deploy_failed"
                and not done.get("applied") and done.get("after") == image):
            break
    return switch


def _in_window(windows: Mapping[str, ServingWindow], tag: str = _TAG, created: str = "created_at") \
        -> tuple[str, list[Any]]:
    """SQL that holds for a row inside its image's window (any row of an image without one), and its parameters."""
    if not windows:
        return "1 = 1", []
    whens = " ".join(f"WHEN ? THEN {created} >= ?" for _ in windows)
    return f"(CASE {tag} {whens} ELSE 1 END)", [v for w in windows.values() for v in (w.image, w.since)]


def job_facts_from_rows(db: Rows, windows: Mapping[str, ServingWindow] | None = None) -> tuple[JobFacts, str | None]:
    """The job figures, aggregated in SQL (SQLite and D1 alike) so no response grows with the table.
    A missing job_metrics table leaves its figures empty, with a note (the percentiles line says so).
    `windows` (image -> the ledger change that put it on the stack) scopes that image's per-image figures to its
    jobs since then; the stack-wide figures count every job."""
    windows = dict(windows or {})
    scope, scoped = _in_window(windows)
    by_status = {r["status"]: r["n"] for r in db.all("SELECT status, count(*) AS n FROM jobs GROUP BY status")}
    first = db.one("SELECT status FROM jobs ORDER BY created_at, id LIMIT 1")
    by_image: dict[str, dict[str, int]] = {}
    for r in db.all(f"SELECT coalesce(worker_image_tag, '') AS tag, status, count(*) AS n FROM jobs WHERE {scope} "
                    "GROUP BY coalesce(worker_image_tag, ''), status", scoped):
        by_image.setdefault(str(r["tag"]), {})[r["status"]] = r["n"]
    cold = db.one(f"SELECT count(*) AS n FROM jobs WHERE {_COLD_FAILED}", _NOT_READY_LIKE)
    first_by_image = {str(r["tag"]): {"id": r["id"], "status": r["status"], "error": r["error"]} for r in db.all(
        f"SELECT tag, id, status, error FROM (SELECT {_TAG} AS tag, id, status, substr(error, 1, 300) AS error, "
        f"row_number() OVER (PARTITION BY {_TAG} ORDER BY created_at, id) AS k FROM jobs WHERE {scope}) "
        "WHERE k = 1", scoped)}
    cold_by_image = {str(r["tag"]): {"n": r["n"], "id": r["id"], "error": r["error"]} for r in db.all(
        f"SELECT tag, n, id, error FROM (SELECT {_TAG} AS tag, id, substr(error, 1, 300) AS error, "
        f"count(*) OVER (PARTITION BY {_TAG}) AS n, row_number() OVER (PARTITION BY {_TAG} ORDER BY created_at "
        f"DESC, id DESC) AS k FROM jobs WHERE {_COLD_FAILED} AND {scope}) WHERE k = 1", [*_NOT_READY_LIKE, *scoped])}
    submit_failures = db.one(f"SELECT count(*) AS n FROM jobs WHERE {_SUBMIT_FAILED}")
    # A job still queued without a RunPod id is being submitted: its answer is not in yet.
    last_submission = db.one(f"SELECT id, created_at, substr(error, 1, 300) AS error, {_SUBMIT_FAILED} AS refused "
                             f"FROM jobs WHERE runpod_job_id IS NOT NULL OR {_SUBMIT_FAILED} "
                             "ORDER BY created_at DESC, id DESC LIMIT 1")
    no_images_by_image = {str(r["tag"]): r["n"] for r in db.all(
        f"SELECT {_TAG} AS tag, count(*) AS n FROM jobs j WHERE status = 'completed' AND (results_json IS NULL "
        "OR results_json = '' OR (json_valid(results_json) AND (json_type(results_json) = 'null' "
        f"OR json_array_length(results_json) = 0))) AND {scope} GROUP BY {_TAG}", scoped)}
    bad_by_image = _bad_results_by_image(db, windows, scope, scoped)
    bad = [line for lines in bad_by_image.values() for line in lines]
    applied = {r["runpod_status"]: r["n"] for r in db.all(
        "SELECT runpod_status, count(*) AS n FROM webhook_deliveries WHERE source = 'webhook' AND applied = 1 "
        "GROUP BY runpod_status")}
    undelivered = db.one("SELECT count(*) AS n FROM jobs j WHERE status = 'completed' AND NOT EXISTS (SELECT 1 "
                         "FROM webhook_deliveries d WHERE d.job_id = j.id AND d.applied = 1 "
                         "AND d.runpod_status = 'COMPLETED')")
    m, missing, means, rates, metrics_note = _metrics_figures(db, windows, scope, scoped)
    facts = JobFacts(total=sum(by_status.values()), by_status=by_status, first_job_status=first.get("status"),
                     cold_start_failures=cold.get("n") or 0,
                     completed_without_images=sum(no_images_by_image.values()), bad_results=tuple(bad[:20]),
                     completed_without_images_by_image=no_images_by_image,
                     bad_results_by_image={tag: tuple(lines[:20]) for tag, lines in bad_by_image.items()},
                     applied_webhooks=applied,
                     completed_without_delivery=undelivered.get("n") or 0, metrics_completed=m.get("n") or 0,
                     metrics_with_durations=m.get("timed") or 0, metrics_missing_cost=m.get("uncosted") or 0,
                     metrics_unmeasured=m.get("unmeasured") or 0, missing_cost_jobs=tuple(missing),
                     mean_e2e_ms=m.get("mean_e2e"), by_image_status=by_image, mean_e2e_ms_by_image=means,
                     first_job_by_image=first_by_image, cold_start_by_image=cold_by_image,
                     submit_failures=submit_failures.get("n") or 0, last_submission=last_submission or None,
                     metrics_by_image=rates, windows=windows)
    return facts, metrics_note


def _bad_results_by_image(db: Rows, windows: Mapping[str, ServingWindow], scope: str,
                          scoped: list[Any]) -> dict[str, list[str]]:
    """tag -> each completed job's result that is not an image (or results_json that is not JSON), up to 20 of each
    kind per image, within the image's window."""
    # The first 20 of each image: an older image's many bad results crowd out none of the pinned one's.
    not_json = db.all(f"SELECT tag, id FROM (SELECT {_TAG} AS tag, id, row_number() OVER (PARTITION BY {_TAG} "
                      "ORDER BY created_at, id) AS k FROM jobs WHERE status = 'completed' AND results_json IS NOT "
                      f"NULL AND results_json <> '' AND NOT json_valid(results_json) AND {scope}) WHERE k <= 20",
                      scoped)
    j_scope, j_scoped = _in_window(windows, "coalesce(j.worker_image_tag, '')", "j.created_at")
    bad_rows = db.all(
        "SELECT tag, job_id, key, content_type, bytes FROM (SELECT coalesce(j.worker_image_tag, '') AS tag, j.id AS "
        "job_id, json_extract(r.value, '$.key') AS key, json_extract(r.value, '$.content_type') AS content_type, "
        "json_extract(r.value, '$.bytes') AS bytes, row_number() OVER (PARTITION BY coalesce(j.worker_image_tag, "
        f"'') ORDER BY j.created_at, j.id, r.key) AS k FROM jobs j, json_each({_RESULTS_ARRAY}) r "
        "WHERE j.status = 'completed' AND (substr(coalesce(json_extract(r.value, '$.content_type'), ''), 1, 6) "
        f"<> 'image/' OR coalesce(json_extract(r.value, '$.bytes'), 0) <= 0) AND {j_scope}) WHERE k <= 20", j_scoped)
    bad_by_image: dict[str, list[str]] = {}
    for r in not_json:
        bad_by_image.setdefault(str(r["tag"]), []).append(f"{r['id']}: results_json is not JSON")
    for r in bad_rows:
        bad_by_image.setdefault(str(r["tag"]), []).append(
            f"{r['job_id']}: {r['key']} content_type={_shown(r['content_type'])} bytes={_shown(r['bytes'])}")
    return bad_by_image


def _metrics_figures(db: Rows, windows: Mapping[str, ServingWindow], scope: str, scoped: list[Any]) -> tuple[
        dict[str, Any], list[Any], dict[str, Any], dict[str, dict[str, Any]], str | None]:
    """The job_metrics figures: (the stack-wide counts and mean, the newest jobs missing a cost, tag -> mean e2e,
    tag -> the windowed image's error rate, a note when job_metrics cannot be read)."""
    metrics_note = None
    try:
        # A job without a run time has nothing to price (a recovery from the result store, or RunPod gave no
        # executionTime): its null cost is the documented rule, not a miss.
        unpriced = ("runpod_run_duration_ms IS NOT NULL AND (cost_estimate_usd IS NULL OR cost_estimate_usd < 0)")
        m = db.one("SELECT count(*) AS n, sum(runpod_queue_duration_ms IS NOT NULL AND runpod_run_duration_ms "
                   f"IS NOT NULL) AS timed, sum({unpriced}) AS uncosted, sum(runpod_run_duration_ms IS NULL) "
                   "AS unmeasured, avg(e2e_ms) AS mean_e2e FROM job_metrics WHERE status = 'completed'")
        missing = [r["job_id"] for r in db.all(f"SELECT job_id FROM job_metrics WHERE status = 'completed' AND "
                                              f"{unpriced} ORDER BY created_at DESC LIMIT 5")] if m.get("uncosted") \
            else []
        means = {str(r["tag"]): r["mean_e2e"] for r in db.all(
            "SELECT coalesce(worker_image_tag, '') AS tag, avg(e2e_ms) AS mean_e2e FROM job_metrics "
            f"WHERE status = 'completed' AND {scope} GROUP BY coalesce(worker_image_tag, '')", scoped)
            if r["mean_e2e"] is not None}
        # The error rate of each windowed image over its window, as service/metrics.py counts it: cancelled jobs
        # count, failed and timed_out ones are errors.
        # `forgotten`: the failed ones RunPod had no record of when recovered (a host restart ends a local RunPod's
        # jobs in flight; they keep the image's tag, docs/INTERFACES.md): the advice names a new window for them.
        rates = {str(r["tag"]): {"count": r["n"], "errors": r["errors"] or 0,
                                 **({"forgotten": r["forgotten"]} if r["forgotten"] else {})} for r in db.all(
            f"SELECT {_TAG} AS tag, count(*) AS n, sum(status IN ('failed', 'timed_out')) AS errors, "
            "sum(status = 'failed' AND EXISTS (SELECT 1 FROM jobs f WHERE f.id = job_metrics.job_id AND "
            f"substr(f.error, 1, {len(FORGOTTEN_PREFIX)}) = ?)) AS forgotten FROM job_metrics "
            f"WHERE {_TAG} IN ({', '.join('?' for _ in windows)}) AND {scope} GROUP BY {_TAG}",
            [FORGOTTEN_PREFIX, *windows, *scoped])} if windows else {}
    except GoldgateError as exc:
        m, missing, means, rates, metrics_note = {}, [], {}, {}, f"job_metrics unreadable: {exc}"
    return m, missing, means, rates, metrics_note


def migration_facts_from_rows(db: Rows) -> MigrationFacts:
    """What `goldgate up` (local) or `pulumi up` (D1) applied, read from wrangler's own table."""
    from goldgate.migrations import discover

    known = [m.name for m in discover()]
    tracked = db.all("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'd1_migrations'")
    applied = {r["name"] for r in db.all("SELECT name FROM d1_migrations")} if tracked else set()
    return MigrationFacts(newest=known[-1], missing=tuple(n for n in known if n not in applied),
                          unknown=tuple(sorted(applied - set(known))))


def read_migration_facts(db_path: Path, host_running: bool = False) -> MigrationFacts:
    if not db_path.is_file():
        raise GoldgateError(f"no database at {db_path}; bring the stack up (`goldgate up`)")
    conn = connect_read_only(db_path)
    try:
        facts = migration_facts_from_rows(SqliteRows(conn, db_path))
    finally:
        conn.close()
    return dataclasses.replace(facts, host_running=host_running)


def read_peer_migrations(platform: Any, stacks: Iterable[str]) -> dict[str, MigrationFacts]:
    """The databases of these stacks that a host serves: a host an older goldgate started keeps serving its
    database without the newer migrations, and `goldgate release` refuses to go on until it is restarted."""
    peers = {}
    for name in stacks:
        if platform.host_pid(name) is None:
            continue  # no host: the `goldgate up` that `release` runs first applies what is missing
        facts, _ = _attempt(name, lambda n=name: read_migration_facts(platform.db_path(n), host_running=True))
        if facts is not None:  # unreadable: that stack's own checklist says why
            peers[name] = facts
    return peers


def read_job_facts(db_path: Path, windows: Mapping[str, ServingWindow] | None = None) -> JobFacts:
    if not db_path.is_file():
        raise GoldgateError(f"no database at {db_path}: a stack never brought up here has none until `goldgate up` "
                            "and some jobs; one whose file was deleted is not started anew (`goldgate up` refuses): "
                            "restore it, docs/D1_DISASTER_RECOVERY.md, \"The database file was deleted\"")
    conn = connect_read_only(db_path)
    try:
        facts, note = job_facts_from_rows(SqliteRows(conn, db_path), windows)
    finally:
        conn.close()
    if note:
        raise GoldgateError(f"{db_path}: {note}")
    return facts


# Lines whose job_id is what an unauthenticated request claimed, not a job the service read: a webhook with a wrong
# signature names the job in its URL (to recover after a secret rotation), and is refused before any read of it.
UNVERIFIED_JOB_CLAIMS = frozenset({"webhook.bad_signature"})


def read_log_facts(logs_dir: Path, schema_path: Path = LOG_SCHEMA,
                   windows: Mapping[str, ServingWindow] | None = None, also: Iterable[Path] = ()) -> LogFacts:
    """The newest lines of every log judged against the v1 schema (the end of each file, see LOG_TAIL_BYTES), and
    the start-up lines of the newest workers. `windows` scopes an image's start-up lines (models_loaded,
    preflight_failed) to those since its window. `also`: log files outside `logs_dir` judged with it (the release
    commands' <home>/logs/release.jsonl), each named by its full path; one that does not exist is none."""
    windows = dict(windows or {})
    validator = _log_validator(schema_path)
    # Every log file is judged, worker process output (worker-*.log) included: the worker routes the runpod SDK's
    # logger, prints, warnings and crashes into v1 lines. Only *.stderr.log is exempt: the crash output of a host
    # process (a Python traceback has no schema).
    sizes = _log_sizes(logs_dir)
    for path in also:
        sizes.update(_log_size(path))
    tails, heads = _log_budgets(sizes)
    invalid: list[str] = []
    invalid_count = lines = models_loaded = unjudged = also_lines = 0
    trace_missing: set[str] = set()
    context: dict[str, set[str]] = {}
    startup: dict[str, dict[str, int]] = {event: {} for event in _STARTUP_EVENTS}
    earlier: dict[str, int] = {}

    def count_startup(line: dict[str, Any]) -> None:
        nonlocal models_loaded
        if line.get("event") == "models_loaded":
            models_loaded += 1
        _count_startup(line, windows, startup, earlier)

    for path in sorted(sizes):
        inside = path.is_relative_to(logs_dir)
        name = path.relative_to(logs_dir) if inside else path
        for line in _startup_lines(path, heads.get(path, 0), validator):
            count_startup(line)
        whole, window_lines = _log_tail(path, tails[path], sizes[path][0])
        pending: list[tuple[int, str]] = []  # (index in the window, first error): named once the window is counted
        for index, text in enumerate(window_lines):
            if text is not None and not text.strip():
                continue
            if lines >= MAX_LOG_LINES:
                unjudged += 1
                continue
            lines += 1
            also_lines += not inside
            line, errors = _judged_line(text, validator)
            if errors:
                invalid_count += 1
                if len(invalid) + len(pending) < 5:
                    first = errors[0] if isinstance(errors[0], str) else errors[0].message
                    pending.append((index, first[:160]))
                continue
            if line.get("event") in startup:
                count_startup(line)
            job = line.get("job_id")
            if job and line.get("event") not in UNVERIFIED_JOB_CLAIMS:
                if not line.get("trace_id"):
                    trace_missing.add(job)
                seen = context.setdefault(job, set())
                seen.update(k for k in ("trace_id", "workflow_version", "worker_image_tag") if line.get(k))
        # A line of a file read whole is named by its number; one of a file's end by its number from the end
        # (`tail -n K file | head -n 1` shows it): the lines before the end were never counted.
        invalid.extend(f"{name}:{i + 1}: {first}" if whole else
                       f"{name}:{len(window_lines) - i} from the end: {first}" for i, first in pending)
    without = sorted(j for j, seen in context.items() if len(seen) < 3)
    return LogFacts(files=len(sizes), lines=lines, invalid=tuple(invalid), invalid_count=invalid_count,
                    jobs_missing_trace=tuple(sorted(trace_missing)[:10]), jobs_without_context=tuple(without[:10]),
                    job_ids=len(context), models_loaded=models_loaded, unjudged=unjudged,
                    models_loaded_by_image=startup["models_loaded"],
                    preflight_failed_by_image=startup["preflight_failed"], models_loaded_before_by_image=earlier,
                    windows=windows,
                    files_judged=sum(1 for n in tails.values() if n), bytes_judged=sum(tails.values()),
                    bytes_total=sum(size for size, _ in sizes.values()),
                    also_files=tuple(str(path) for path in sorted(sizes) if not path.is_relative_to(logs_dir)),
                    also_lines=also_lines)


def _count_startup(line: Mapping[str, Any], windows: Mapping[str, ServingWindow],
                   startup: dict[str, dict[str, int]], earlier: dict[str, int]) -> None:
    """Count a worker's start-up line (models_loaded, preflight_failed) for its image in `startup` when it falls in
    the image's window; a models_loaded line from before it, of an image the stack held before, in `earlier`."""
    from service.metrics import MetricsError, normalize_since

    tag = str(line.get("worker_image_tag") or "")
    window = windows.get(tag)
    # models_loaded: since the switch to the image (a warm worker kept across a redeploy of it still confirms
    # its models); preflight_failed: since the newest change (a redeploy may follow the fix of a local snapshot).
    since = None if window is None else window.since
    if window is not None and line.get("event") == "models_loaded":
        since = window.startup_since or window.since
    try:
        before = since is not None and (normalize_since(line.get("ts")) or "") < since
    except MetricsError:
        before = True  # no readable time: not shown to be within the window
    if not before:
        startup[line["event"]][tag] = startup[line["event"]].get(tag, 0) + 1
    elif window is not None and window.held_before and line.get("event") == "models_loaded":
        earlier[tag] = earlier.get(tag, 0) + 1


def _log_budgets(sizes: Mapping[Path, tuple[int, float]]) -> tuple[dict[Path, int], dict[Path, int]]:
    """How many bytes of each log's end (tails) and of its start (heads: the workers' start-up lines) are judged."""
    # The newest files (by when they were last written) get the byte budget; they are judged in name order.
    tails: dict[Path, int] = {}
    heads: dict[Path, int] = {}
    newest_first = sorted(sizes.items(), key=lambda kv: (-kv[1][1], str(kv[0])))
    left = LOG_JUDGED_BYTES // 2
    for path, (size, _) in newest_first:
        tails[path] = min(size, LOG_TAIL_FLOOR_BYTES, left)
        left -= tails[path]
    left += LOG_JUDGED_BYTES - LOG_JUDGED_BYTES // 2
    head_left = LOG_HEAD_TOTAL_BYTES
    for path, (size, _) in newest_first:
        more = min(size - tails[path], LOG_TAIL_BYTES - tails[path], left)
        tails[path] += more
        left -= more
        if tails[path] < size and head_left:
            heads[path] = min(LOG_HEAD_BYTES, size - tails[path], head_left)
            head_left -= heads[path]
    return tails, heads


def _judged_line(text: str | None, validator: Any) -> tuple[Any, list[Any]]:
    """A log line parsed, and its schema errors sorted by where they are (a line not read, or not JSON: one error
    saying so)."""
    try:
        if text is None:
            raise ValueError
        line = json.loads(text)
        errors = sorted(validator.iter_errors(line), key=lambda e: list(e.path))
    except (ValueError, RecursionError):  # Recursion: nested too deep to parse
        line, errors = None, ["not JSON" if text is not None else
                              f"longer than {MAX_LOG_LINE_CHARS} characters (not read)"]
    return line, errors


@functools.lru_cache(maxsize=4)
def _compiled_validator(schema_path: str, mtime_ns: int, size: int) -> Any:
    import jsonschema

    schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _log_validator(schema_path: Path) -> Any:
    """One compiled validator per schema file (as it is now), shared by every read of the logs in this process."""
    info = schema_path.stat()
    return _compiled_validator(str(schema_path), info.st_mtime_ns, info.st_size)


def _log_sizes(logs_dir: Path) -> dict[Path, tuple[int, float]]:
    """Each judged log file -> (its size, when it was last written), from its metadata alone."""
    if not logs_dir.is_dir():
        return {}
    sizes = {}
    for path in logs_dir.rglob("*"):
        if not path.name.endswith(".stderr.log"):
            sizes.update(_log_size(path))
    return sizes


def _log_size(path: Path) -> dict[Path, tuple[int, float]]:
    """{path: (its size, when it was last written)} for a regular file, else {}."""
    try:
        info = path.stat()
    except OSError:
        return {}
    return {path: (info.st_size, info.st_mtime)} if stat.S_ISREG(info.st_mode) else {}


def _read_span(path: Path, start: int, length: int) -> bytes:
    """`length` bytes of the regular file at `path` from `start` (b"" when it is no longer one: a FIFO put in its
    place must not hang the checklist)."""
    if length <= 0:
        return b""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return b""
        fh.seek(start)
        return fh.read(length)


def _log_tail(path: Path, budget: int, size: int) -> tuple[bool, list[str | None]]:
    """(whether the whole file was read, its last `budget` bytes as lines), a line longer than MAX_LOG_LINE_CHARS as
    None. The size is the one seen before: lines written since are the next checklist's. A line cut by the window's
    start is skipped, unless what is seen of it is already too long (then it is a line too long)."""
    if budget <= 0:
        return size <= 0, []
    start = size - budget
    data = _read_span(path, start - 1 if start > 0 else 0, budget + (1 if start > 0 else 0))
    cut = False
    if start > 0:
        cut, data = data[:1] != b"\n", data[1:]
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()  # the file ends with a newline: no line after it
    out: list[str | None] = [None if len(r) > MAX_LOG_LINE_CHARS else r.decode("utf-8", errors="replace")
                             for r in raw]
    if cut and out and out[0] is not None:
        out[0] = ""  # a line begun before the window: not judged (an empty line is skipped)
    return start <= 0, out


def _startup_lines(path: Path, budget: int, validator: Any) -> list[dict[str, Any]]:
    """The valid start-up lines among the first `budget` bytes of `path` (a line cut by the budget is not read)."""
    data = _read_span(path, 0, budget)
    raw = data.split(b"\n")[:-1]  # the last piece ends at the budget, not at a newline: not a whole line
    found = []
    for text in raw:
        if not any(event.encode() in text for event in _STARTUP_EVENTS):
            continue
        try:
            line = json.loads(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(line, dict) and line.get("event") in _STARTUP_EVENTS and not any(validator.iter_errors(line)):
            found.append(line)
    return found


# `RUN python ... fetch_model.py URL SHA256|- SIZE|- PATH`: the worker's way of baking a model (images/worker/fetch_model.py).
_FETCH_MODEL = re.compile(r"^\s*RUN\s+python\b.*?\bfetch_model\.py\s+(?P<args>.*?)\s*$")


def dockerfile_problems(dockerfile: Path, manifest: Any) -> tuple[str, ...]:
    """Models baked by the Dockerfile, one layer per manifest entry (an ADD or COPY, or a RUN of the worker's
    fetch_model.py, whose last argument is the file it writes), and no volume. A fetch_model.py layer also names the
    file's source URL, sha256 and size (`-`: unchecked), and all three must be models.yaml's (the size bounds the
    download): the local snapshot bakes what
    models.yaml says, the cloud image what the Dockerfile fetches, so another URL ships another model than the one the
    golden runs tested, and another sha256 ships it unchecked or fails the build on the right file."""
    text = dockerfile.read_text(encoding="utf-8")
    instructions = re.sub(r"\\\r?\n", " ", text)   # an instruction continued over lines is read as one line
    problems = []
    for m in manifest.models:
        target = f"/comfyui/models/{m.relative_path}"
        baked = rf"^\s*(?:ADD|COPY|RUN\s+python\b.*\bfetch_model\.py)\b.*\s{re.escape(target)}\s*$"
        layers = [found.group(0) for found in re.finditer(baked, instructions, re.MULTILINE)]
        if not layers:
            problems.append(f"the Dockerfile does not bake {m.relative_path} into {target}")
        for layer in layers:   # an ADD or COPY names no sha256: only a fetch_model.py layer is compared
            fetch = _FETCH_MODEL.match(layer)
            if fetch is not None:
                problems += _fetch_problems(m, fetch.group("args"), target)
    if re.search(r"^\s*VOLUME\b", text, re.MULTILINE):
        problems.append("the Dockerfile declares a VOLUME; models must be baked, not mounted")
    if "/runpod-volume" in text:
        problems.append("the Dockerfile refers to /runpod-volume (a network volume)")
    return tuple(problems)


def _fetch_problems(model: Any, args_text: str, target: str) -> list[str]:
    """How the Dockerfile's `fetch_model.py URL SHA256|- SIZE|- PATH` for `model` differs from its models.yaml
    entry."""
    args = args_text.split()
    if len(args) != 4:
        return [f"the Dockerfile fetches {model.relative_path} with {args_text!r}, not `URL SHA256|- SIZE|- {target}`"]
    url, sha256, size, _ = args
    problems = []
    if url != model.source_url:
        problems.append(f"the Dockerfile fetches {model.relative_path} from {url}, models.yaml from "
                        f"{model.source_url}")
    if sha256 != (model.sha256 or "-"):
        ours = "- (unchecked)" if sha256 == "-" else sha256
        problems.append(f"the Dockerfile checks {model.relative_path} against sha256 {ours}, models.yaml pins "
                        f"{model.sha256 or 'none (null)'}")
    if size != ("-" if model.size is None else str(model.size)):
        ours = "- (unchecked)" if size == "-" else f"{size} bytes"
        theirs = "none (null)" if model.size is None else f"{model.size} bytes"
        problems.append(f"the Dockerfile bounds {model.relative_path} at size {ours}, models.yaml gives {theirs}")
    return problems


def read_disk_room(db_path: Path) -> DatabaseRoom:
    """The local database's size (the file and its WAL: both take the disk until a checkpoint folds
    one into the other) and the room on the filesystem holding it; before the stack's first start,
    the nearest directory that exists stands for it. Two stat calls and a statfs: the checklist
    stays fast however large the file."""
    size = 0
    for path in (db_path, db_path.with_name(db_path.name + "-wal")):
        try:
            size += path.stat().st_size
        except FileNotFoundError:
            pass
    where = db_path.parent
    while not where.is_dir() and where != where.parent:
        where = where.parent
    usage = shutil.disk_usage(where)
    return DatabaseRoom(str(db_path), size, free_bytes=usage.free, total_bytes=usage.total)


def read_worker_facts() -> tuple[Any, tuple[str, ...], tuple[str, ...]]:
    """(consistency report, Dockerfile problems, default model roots) from images/worker itself."""
    from images.worker import config as worker_config
    from images.worker.manifest import check_consistency, load_manifest
    from images.worker.workflows import load_workflows

    manifest = load_manifest(WORKER_DIR / "models.yaml")
    report = check_consistency(manifest, load_workflows(WORKER_DIR / "workflows"))
    return report, dockerfile_problems(WORKER_DIR / "Dockerfile", manifest), tuple(worker_config.DEFAULT_MODEL_ROOTS)


def read_image_models(home: Path, image: str) -> ImageModels:
    """The worker's own preflight (what `goldgate doctor --stack` runs) over the pinned image's baked models."""
    from goldgate.local import image_store
    from images.worker import preflight

    snapshot = image_store.resolve(image, home)
    report = preflight.run_preflight(snapshot / "worker" / "models.yaml", snapshot / "worker" / "workflows",
                                     [str(snapshot / "models")])
    return ImageModels(image=image, missing=tuple(report.problems), checked=len(report.models))


# -- the live probe ------------------------------------------------------------------------------

_RESULT_RUNBOOK = 'docs/RUNBOOK.md, "A result the store no longer holds"'


def _judged_result(recorded: dict[str, Any], got: Any) -> tuple[bool, str]:
    """A result download against what its job recorded: status, type, size and, when the job recorded one, the
    sha256, since an image damaged in the store at its own size is served whole and would pass on its size alone.
    A refusal quotes the service's own code and message: they say which of the runbook's cases it is."""
    ctype = got.headers.get("content-type", "").split(";")[0]
    detail = (f"GET /api/result/{recorded['key']} -> {got.status_code}, {ctype}, {len(got.content)} bytes "
              f"(recorded {recorded['content_type']}, {recorded['bytes']} bytes)")
    if got.status_code != 200:
        try:
            error = got.json().get("error") or {}
            said = f"{error.get('code')}: {error.get('message')}"
        except (ValueError, AttributeError):
            said = "no JSON error in the answer"
        return False, f"{detail}; the service said {said} ({_RESULT_RUNBOOK})"
    ok = ctype == recorded["content_type"] and len(got.content) == recorded["bytes"]
    want = recorded.get("sha256")
    if ok and isinstance(want, str) and want:
        served = hashlib.sha256(got.content).hexdigest()
        if served != want.lower():
            return False, (f"{detail}; its sha256 {served[:12]}... is not the {want[:12]}... its job recorded: the "
                           f"store holds other bytes at the same size, served as the image ({_RESULT_RUNBOOK})")
        detail += ", sha256 as recorded"
    return ok, detail


def live_probe(api_url: str, api_token: str, webhook_secret: str | None, db_path: Path,
               no_replay: str = "") -> LiveFacts:
    """Re-POST a completed job's webhook, then an older state (IN_PROGRESS) of it, and see nothing change; read its
    status and one result. Without a `webhook_secret` the service holds, no webhook is sent (`no_replay` says why)."""
    import httpx

    conn = connect_read_only(db_path)
    conn.row_factory = sqlite3.Row
    try:
        job = conn.execute("SELECT * FROM jobs WHERE status = 'completed' AND runpod_job_id IS NOT NULL "
                           "AND results_json IS NOT NULL ORDER BY finished_at DESC LIMIT 1").fetchone()
        if job is None:
            return LiveFacts(False, "no completed job to replay; run one (`goldgate demo`)", False,
                             "no completed job", False, "no completed job")
        before = _job_state(conn, job["id"])
    finally:
        conn.close()
    results = json.loads(job["results_json"])
    headers = {"Authorization": f"Bearer {api_token}"}
    with httpx.Client(base_url=api_url, timeout=30.0, verify=tls_context()) as http:
        try:
            replay_ok, replay_detail = (None, no_replay) if webhook_secret is None else _replay(
                http, job, webhook_secret, before, db_path)
            status = http.get(f"/api/status/{job['id']}", headers=headers)
            view = status.json() if status.status_code == 200 else {}
            status_ok = view.get("status") == "completed"
            status_detail = f"GET /api/status/{job['id']} -> {status.status_code} status={_shown(view.get('status'))}"
            first = results[0]
            got = http.get(f"/api/result/{first['key']}", headers=headers)
            result_ok, result_detail = _judged_result(first, got)
        except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
            return LiveFacts(False, f"the live probe failed: {exc}", False, "not reached", False, "not reached")
    return LiveFacts(replay_ok, replay_detail, status_ok, status_detail, result_ok, result_detail)


def _replay(http: Any, job: sqlite3.Row, webhook_secret: str, before: dict[str, Any],
            db_path: Path) -> tuple[bool, str]:
    """The job's COMPLETED webhook again, then an IN_PROGRESS after it: whether the service changed nothing."""
    from service import signing

    results = json.loads(job["results_json"])
    body = {"id": job["runpod_job_id"], "status": "COMPLETED", "delayTime": job["runpod_queue_duration_ms"],
            "executionTime": job["runpod_run_duration_ms"],
            "input": {"job_id": job["id"], "trace_id": job["trace_id"], "workflow_version": job["workflow_version"]},
            "output": {"images": results,
                       "timings": json.loads(job["worker_timings_json"]) if job["worker_timings_json"] else {},
                       "workflow_version": job["workflow_version"], "worker_image_tag": job["worker_image_tag"],
                       "gpu_type": job["gpu_type"]}}
    sig = signing.webhook_signature(webhook_secret, job["id"])
    replay = http.post("/api/runpod/webhook", params={"job": job["id"], "sig": sig}, json=body)
    # An older state arriving after the terminal one (RunPod's deliveries are not ordered): the service
    # must answer 200 (a refusal is retried) and ignore it as out of order.
    late = http.post("/api/runpod/webhook", params={"job": job["id"], "sig": sig},
                     # its own output each run: the service records an ignored delivery, and the same
                     # late body again would be a duplicate on the next checklist run
                     json={"id": job["runpod_job_id"], "status": "IN_PROGRESS",
                           "output": {"progress": f"goldgate checklist probe {uuid.uuid4().hex}"}})
    conn = connect_read_only(db_path)
    conn.row_factory = sqlite3.Row
    try:
        after = _job_state(conn, job["id"])
    finally:
        conn.close()
    changed = [k for k in before if before[k] != after[k]]
    late_answer = _answer(late)
    ignored = late.status_code == 200 and late_answer.get("applied") is False \
        and late_answer.get("reason") == "out_of_order"
    replay_ok = replay.status_code == 200 and ignored and not changed
    replay_detail = (f"replayed the COMPLETED webhook of job {job['id']}: HTTP {replay.status_code}; then "
                     f"an IN_PROGRESS after it: HTTP {late.status_code} applied="
                     f"{_shown(late_answer.get('applied'))} reason={_shown(late_answer.get('reason'))}"
                     + ("" if ignored else ' (expected applied=false, reason="out_of_order")') + "; "
                     + ("nothing changed (job row, metrics, applied deliveries)" if not changed
                        else f"CHANGED: {', '.join(changed)}"))
    return replay_ok, replay_detail


def _shown(value: Any) -> str:
    """A value the service answered or stored, as its JSON says it (`false`, `null`, `"text/plain"`), not as Python
    would (`False`, `None`, `'text/plain'`); a long text is cut."""
    if isinstance(value, str) and len(value) > 80:
        value = value[:80] + "..."
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return json.dumps(str(value)[:80], ensure_ascii=False)


def _answer(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _job_state(conn: sqlite3.Connection, job_id: str) -> dict[str, Any]:
    job = dict(conn.execute("SELECT status, version, results_json, updated_at, finished_at, error FROM jobs "
                            "WHERE id = ?", (job_id,)).fetchone())
    metrics = conn.execute("SELECT * FROM job_metrics WHERE job_id = ?", (job_id,)).fetchall()
    applied = conn.execute("SELECT count(*) FROM webhook_deliveries WHERE job_id = ? AND applied = 1",
                           (job_id,)).fetchone()[0]
    return {"job": job, "metrics": [tuple(r) for r in metrics], "applied_deliveries": applied}


# -- gathering -----------------------------------------------------------------------------------

def read_golden_suite() -> tuple[GoldenSuite | None, str | None]:
    """The checkout's golden suite, as `goldgate promote` reads it for its gate (GoldenPaths' default cases_dir), or
    why it cannot be read."""
    from goldgate.release.cases import load_cases, shown_dir, suite_digests
    from goldgate.release.verification import GoldenPaths

    cases_dir = GoldenPaths().cases_dir
    return _attempt("golden cases", lambda: GoldenSuite(suite_digests(load_cases(cases_dir)), shown_dir(cases_dir)))


def _attempt(what: str, fn: Callable[[], Any]) -> tuple[Any, str | None]:
    try:
        return fn(), None
    except (GoldgateError, OSError, ValueError, sqlite3.Error) as exc:
        return None, f"{what}: {exc}"


def attempt_worker_facts() -> tuple[Any, tuple[str, ...] | None, tuple[str, ...], str | None]:
    """read_worker_facts(), and why it failed instead: (consistency, Dockerfile problems, model roots, error)."""
    try:
        consistency, docker_problems, roots = read_worker_facts()
        return consistency, docker_problems, roots, None
    except Exception as exc:  # noqa: BLE001 -- the worker's own loaders raise their own error types
        return None, None, (), f"images/worker: {exc}"


def gather_local(platform: Any, stack: str, progress: Progress = _quiet, live: bool = True,
                 now: datetime | None = None, reports_dir: Path | None = None) -> Facts:
    """Every fact for `goldgate checklist <stack>` on the local target."""
    from goldgate.ops import dr, retention
    from goldgate.ops.metrics_report import report_from_sqlite
    from goldgate.ops.polling_scan import scan_tree
    from goldgate.release.history import on_target
    from goldgate.release.ledger import RELEASE_LOG, Ledger
    from goldgate.release.report import REPORTS_DIR, load_report_of, report_sha256

    the_spec = specs.load_local(stack, platform.stacks_file)  # an unknown stack is refused right away
    role_stack = _role_stacks(platform, stack, the_spec.role)
    spec_map, spec_errors, images, served = _read_local_stacks(platform, role_stack)
    progress("reading the ledger and the golden report")
    # One state dir may hold cloud releases too (`--target cloud` from the same checkout): they are not this stack's.
    ledger, ledger_error = _attempt("ledger", lambda: tuple(on_target(Ledger(platform.home).entries(), "local")))
    golden_path = (reports_dir or REPORTS_DIR) / "latest.json"
    golden, golden_error = _attempt("golden report", lambda: load_report_of(golden_path, "local"))
    golden_sha256, _ = _attempt("golden report", lambda: report_sha256(golden_path)) if golden else (None, None)
    golden_suite, golden_suite_error = read_golden_suite()
    db_path = platform.db_path(stack)
    progress(f"reading job_metrics and jobs from {db_path}")
    metrics, metrics_error = _attempt("metrics", lambda: report_from_sqlite(db_path, stack))
    # The pinned image's lines judge its jobs since the ledger change that put it on this stack.
    window = serving_window(ledger, stack, the_spec.role, images.get(the_spec.role))
    windows = {window.image: window} if window else {}
    jobs, jobs_error = _attempt("jobs", lambda: read_job_facts(db_path, windows))
    migrations, migrations_error = _attempt("migrations", lambda: read_migration_facts(
        db_path, host_running=platform.host_pid(stack) is not None))
    peer_migrations = read_peer_migrations(platform, (n for n in role_stack.values() if n and n != stack))
    progress("checking workflows against models.yaml and the Dockerfile")
    consistency, docker_problems, roots, consistency_error = attempt_worker_facts()
    image = images.get(the_spec.role)
    image_models, image_models_error = (None, f"{stack} has no pinned image") if not image else _attempt(
        "image models", lambda: read_image_models(platform.home, image))
    status = platform.status(stack)
    # The line claims schema v1 at every point: the release commands' own log (promotions, rollbacks, gate refusals,
    # golden verdicts), which a team alerts on, is judged with the stack's.
    logs, logs_error = _attempt("logs", lambda: read_log_facts(Path(status.logs_dir), windows=windows,
                                                               also=(platform.home / RELEASE_LOG,)))
    drill, drill_error = _attempt("DR drill", lambda: dr.latest_drill(platform.home, stack, "local"))
    prune, prune_error = _attempt("prune record", lambda: retention.latest_prune(platform.home, stack, "local"))
    room, room_error = _attempt("the database's disk", lambda: read_disk_room(db_path))
    live_facts, live_reason = _probe_live(platform, stack, status, db_path, live, progress)
    return Facts(stack=stack, now=now or datetime.now(UTC), specs=spec_map, spec_errors=spec_errors, images=images,
                 served=served,
                 ledger=ledger, ledger_error=ledger_error, golden=golden, golden_error=golden_error,
                 golden_path=str(golden_path), golden_sha256=golden_sha256, golden_suite=golden_suite,
                 golden_suite_error=golden_suite_error, metrics=metrics, metrics_error=metrics_error, jobs=jobs,
                 jobs_error=jobs_error, consistency=consistency, consistency_error=consistency_error,
                 dockerfile_problems=docker_problems, image_models=image_models,
                 image_models_error=image_models_error, model_roots=roots, logs=logs, logs_error=logs_error,
                 polling=tuple(scan_tree(SERVICE_DIR)), live=live_facts, live_reason=live_reason, drill=drill,
                 drill_error=drill_error, migrations=migrations, migrations_error=migrations_error,
                 peer_migrations=peer_migrations, prune=prune, prune_error=prune_error, room=room,
                 room_error=room_error)


def _role_stacks(platform: Any, stack: str, role: str) -> dict[str, str | None]:
    """role -> the local stack of that role (None for a role stacks/local.yaml has none of); `stack` for its own."""
    names = specs.local_stack_names(platform.stacks_file)
    role_stack = {r: next((n for n in names if specs.load_local(n, platform.stacks_file).role == r), None)
                  for r in specs.ROLES}
    role_stack[role] = stack
    return role_stack


def _read_local_stacks(platform: Any, role_stack: Mapping[str, str | None]) -> tuple[
        dict[str, StackSpec], dict[str, str], dict[str, str | None], dict[str, str | None]]:
    """Each role's stack as the platform holds it: (role -> spec, role -> why it could not be loaded, role -> the
    image it pins, role -> the image its running host serves)."""
    spec_map: dict[str, StackSpec] = {}
    spec_errors: dict[str, str] = {}
    images: dict[str, str | None] = {}
    served: dict[str, str | None] = {}
    for role, name in role_stack.items():
        if name is None:
            spec_errors[role] = f"stacks/local.yaml has no {role} stack"
            continue
        images[role] = platform.pinned_image(name)
        running, _ = _attempt(f"{name} status", lambda n=name: platform.status(n))
        if running is not None and getattr(running, "running", False):
            served[role] = getattr(running, "image", None)
        got, err = _attempt(f"{name} spec", lambda n=name: platform.spec(n))
        if got:
            spec_map[role] = got
        else:
            spec_errors[role] = err or "not loaded"
    return spec_map, spec_errors, images, served


def _probe_live(platform: Any, stack: str, status: Any, db_path: Path, live: bool,
                progress: Progress) -> tuple[LiveFacts | None, str | None]:
    """The live probe of a running stack (a job's status and result read back, a webhook replayed), or why none ran."""
    if not live:
        return None, "--offline: live checks skipped"
    if not status.running or not status.api_url:
        return None, f"stack {stack} is not running (`goldgate up {stack}`)"
    # During a rotation (secret files changed, service not restarted on them) the service holds the secret it
    # read at its start, not the file's: a replay signed with the file's is refused 401, a fault of no one's.
    # Status and result are still read; the replay waits for the rotation's step 3.
    rotating = platform.secrets_changed(stack)
    no_replay = (f"no webhook replayed: {platform.secrets_changed_advice(stack)} (step 3 of 'Rotate the "
                 "webhook secret' in docs/RUNBOOK.md); the replay would be signed with the new secret, which "
                 "the service does not hold yet") if rotating else ""
    progress(f"reading a job's status and result from {status.api_url}" if rotating
             else f"replaying a webhook against {status.api_url}")
    return _attempt("live probe", lambda: live_probe(
        status.api_url, platform.api_token(stack), None if rotating else platform.webhook_secret(stack), db_path,
        no_replay=no_replay))
