"""Operations commands: dr-drill, dr-restore, checklist, metrics, prune, stuck, cancel, jobs."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from goldgate import spec as specs
from goldgate.bounded_http import bearer_token
from goldgate.commands.jobs import cmd_jobs  # noqa: F401 -- `goldgate jobs`, in goldgate.commands.jobs
from goldgate.commands.ops_args import register  # noqa: F401 -- the area's subcommands, listed here too
from goldgate.commands.output import emit, escape_controls, progress, say
from goldgate.errors import GoldgateError, SpecError, StateError
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

if TYPE_CHECKING:
    from goldgate.cloudflare.r2 import R2Admin


def _platform(args: argparse.Namespace) -> LocalPlatform:
    return LocalPlatform(Path(args.home) if getattr(args, "home", None) else None)


def _env_secret(name: str, what: str) -> str:
    """A credential from the environment, without the whitespace around it (a CRLF .env file's carriage return).
    One with a space, control or non-ASCII character inside is refused by name before the export runs: as it was,
    the R2 key's carriage return failed the upload after the export, with the signed header in the drill's error."""
    value = bearer_token(os.environ.get(name, ""))
    if value == "":
        raise GoldgateError(f"{name} is not set: the cloud drill needs {what}")
    if value is None:  # never the value: it is a credential
        raise GoldgateError(f"{name} holds a character no credential has (a space, a line break or a non-ASCII "
                            "letter inside it): copy it again from the Cloudflare dashboard")
    return value


def _on_cloud(args: argparse.Namespace) -> bool:
    """A D1 command (dr-drill, prune, stuck) acting on the cloud: `--cloud`, or `--target cloud` (or GOLDGATE_TARGET)
    as every other command names it."""
    return bool(args.cloud) or args.target == "cloud"


def _refuse_cloud_options(args: argparse.Namespace, options: tuple[str, ...], add: str) -> None:
    """Options only the cloud reads, given to a command acting on the local stack (--cloud or --target cloud
    forgotten): each was taken and ignored, and the local stack was drilled, checked or measured instead of the D1
    or endpoint they named, with nothing said."""
    given = [f"--{name.replace('_', '-')}" for name in options if getattr(args, name, None) is not None]
    if given:
        one = len(given) == 1
        raise GoldgateError(f"{' and '.join(given)} {'is' if one else 'are'} for the cloud: add {add}, or drop "
                            f"{'it' if one else 'them'} to act on the local stack")


# -- dr-drill -------------------------------------------------------------------------------------

def _render_drill(d: dict[str, Any]) -> str:
    verdict = "PASSED" if d["passed"] else "FAILED"
    lines = [f"{d['stack']}: DR drill ({d['target']}) {verdict}"]
    # A DELETE or an UPDATE moves no newest write: the comparison with the backup before counts them
    blind = ("; it sees no deleted or updated row: `since previous backup` counts them"
             if d.get("changes_since_previous") else "")
    for key, label in (("backup_s", "backup time"), ("restore_s", "restore + verify time"),
                       ("rto_s", "RTO achieved"), ("rpo_s", "RPO achieved")):
        value = d.get(key)
        # RPO reads as data at risk; on a quiet database it is the idle time since the newest write the backup holds
        said = ("" if value is None or key != "rpo_s"
                else f" (from the newest write the backup holds to the backup{blind})")
        lines.append(f"  {label:<22} {'-' if value is None else f'{value:.2f} s'}{said}")
    lines.append(f"  {'last write covered':<22} {d.get('last_write_at') or '-'}")
    if d.get("changes_since_previous"):
        lines.append(f"  {'since previous backup':<22} {_render_changes(d['changes_since_previous'])}")
    backup = f"{d['backup']} ({d.get('backup_bytes') or 0} bytes)" if d.get("backup") else "- (none taken)"
    lines.append(f"  {'backup':<22} {backup}")
    rows = ", ".join(f"{t}={n}" for t, n in sorted((d.get("row_counts") or {}).items()))
    lines.append(f"  {'rows':<22} {rows or '-'}")
    for item in d.get("verified") or []:
        lines.append(f"  verified: {item}")
    for note in d.get("notes") or []:
        lines.append(f"  note: {note}")
    if d.get("error"):
        lines.append(f"  error: {d['error']}")
    return "\n".join(lines)


def _render_changes(changes: dict[str, Any]) -> str:
    """The rows each table gained, lost and had changed since the backup before, compared row by row: what the RPO
    figure (the age of the newest write) cannot see."""
    parts = []
    for table, c in sorted((changes.get("tables") or {}).items()):
        if c["added"] or c["deleted"] or c["changed"]:
            unstamped = f" ({c['unstamped']} with no *_at moved)" if c["unstamped"] else ""
            parts.append(f"{table} +{c['added']} -{c['deleted']} ~{c['changed']}{unstamped}")
    return f"{changes.get('previous')}: " + (", ".join(parts) or "no row added, deleted or changed")


def cmd_dr_drill(args: argparse.Namespace) -> int:
    from goldgate.ops import dr

    platform = _platform(args)
    if _on_cloud(args):
        result = _cloud_drill(args, platform.home)
    else:
        _refuse_cloud_options(args, ("database_id", "account_id", "r2_endpoint", "bucket", "api_base"),
                              "--cloud (or --target cloud)")
        # The stack's own window: an operator who keeps a year of backups must not lose them to the default.
        retention = specs.load_local(args.stack, platform.stacks_file).storage.backup_retention_days
        path = platform.db_path(args.stack)
        with _pruning_held(platform.home, args.stack, f"`goldgate dr-drill {args.stack}`", "no drill was run"):
            result = dr.run_local_drill(args.stack, path, platform.home, progress,
                                        keep_backup=not args.discard_backup, backup_retention_days=retention)
    emit(args, result.to_dict(), _render_drill)
    return 0 if result.passed else 1


def _cloud_drill(args: argparse.Namespace, home: Path) -> Any:
    from goldgate.cloudflare.api import CloudflareApi
    from goldgate.cloudflare.d1 import D1Client
    from goldgate.cloudflare.r2 import R2Admin, r2_endpoint
    from goldgate.ops import cloud_facts, dr

    # Both become API path segments: a pasted path or URL would address another resource.
    database_id = cloud_facts.checked_database_id(args.database_id)
    if args.account_id is not None and not re.fullmatch(r"[0-9a-fA-F]{32}", args.account_id):
        raise GoldgateError(f"--account-id {args.account_id[:64]!r} is not a Cloudflare account id (32 hex, the "
                            "dashboard's Account ID)")
    # Checked before any call: boto3 took a malformed endpoint with a traceback, and a malformed bucket failed
    # only after the export (which blocks the database) had run.
    if args.r2_endpoint is not None:
        _check_r2_endpoint(args.r2_endpoint)
    if args.bucket is not None and not _R2_BUCKET.fullmatch(args.bucket):
        raise GoldgateError(f"--bucket {args.bucket[:64]!r} is not an R2 bucket name (3-63 lowercase letters, digits "
                            "or hyphens, beginning and ending with a letter or digit)")
    spec = specs.load_pulumi(args.stack)
    api_base = args.api_base or stack_cloudflare_api_base(args.stack, specs.STACKS_DIR)
    account = args.account_id or (spec.cloud.cloudflare_account_id if spec.cloud else None)
    if not account or account.startswith("<"):
        raise GoldgateError(f"no Cloudflare account id for {args.stack}: set "
                            f"{specs.CONFIG_NAMESPACE}:{specs.SPEC_CONFIG_KEY}.cloud.cloudflare_account_id in "
                            f"stacks/Pulumi.{args.stack}.yaml or pass "
                            "--account-id")
    if not database_id:
        raise GoldgateError("--database-id is required for the cloud (--cloud, --target cloud or "
                            "GOLDGATE_TARGET=cloud): the D1 uuid (`pulumi stack output` or `wrangler d1 info`)")
    api = CloudflareApi(_env_secret("CLOUDFLARE_API_TOKEN", "an API token with D1 Edit"), api_base)
    # A bucket in a jurisdiction (storage.jurisdiction: eu, fedramp) answers only at its jurisdiction's own host.
    r2 = R2Admin(args.r2_endpoint or r2_endpoint(account, spec.storage.jurisdiction),
                 args.bucket or spec.storage.backup_bucket,
                 _env_secret("R2_ACCESS_KEY_ID", _backup_credential("access_key_id", args.stack)),
                 _env_secret("R2_SECRET_ACCESS_KEY", _backup_credential("secret_access_key", args.stack)))
    _check_backup_bucket(r2, args.stack, named=args.bucket is not None)
    with api:
        return dr.run_cloud_drill(args.stack, D1Client(api, account), database_id, r2, home, progress,
                                  scratch_prefix=f"{spec.database.name}-drill",
                                  backup_retention_days=spec.storage.backup_retention_days)


def _backup_credential(part: str, stack: str) -> str:
    """Where the drill's R2 credential comes from: the backups bucket's own token, a stack output (not the workers'
    `r2_*` one, which does not reach that bucket)."""
    return (f"the backups bucket's S3 credentials: `pulumi stack output backup_r2_{part} --show-secrets "
            f"--stack {stack}` (not the workers' r2_{part})")


_R2_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")  # as a stack's storage.bucket


def _check_backup_bucket(r2: R2Admin, stack: str, *, named: bool) -> None:
    """The bucket the backup goes to, read once with the drill's credentials before anything is exported: the
    drill stores the backup only after the export, which blocks the database for as long as it runs, so a bucket
    not there yet (a stack upgraded to its own backups bucket, before `pulumi up`) or credentials that do not
    reach it (the workers' `r2_*` ones, given to the drill before) failed only then, every day."""
    from goldgate.cloudflare.r2 import BACKUP_PREFIX, R2Error, R2Unreachable

    try:
        r2.list(f"{BACKUP_PREFIX}{stack}/")
    except R2Unreachable as exc:   # no answer at all: neither the bucket nor the keys are at fault
        raise GoldgateError(f"{exc}; nothing was exported: R2 at {r2.endpoint_url} did not answer: check this "
                            "machine's network (and --r2-endpoint, if given), then run the drill again") from None
    except R2Error as exc:
        fix = ("check --bucket, and that R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY are that bucket's" if named else
               f"it is the stack's storage.backup_bucket: `pulumi up --stack {stack}` creates it, and its "
               "credentials are the `backup_r2_access_key_id` and `backup_r2_secret_access_key` stack outputs "
               "(the workers' `r2_*` ones do not reach it)")
        raise GoldgateError(f"{exc}; nothing was exported: {fix}") from None


def _check_r2_endpoint(url: str) -> None:
    from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

    try:
        ok = (urlsplit(url).scheme in ("http", "https")
              and bool(is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url)))
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        ok = False
    if not ok:
        raise GoldgateError(f"--r2-endpoint {url[:100]!r} is not an http(s) URL of an S3 endpoint (R2's is "
                            "https://<account id>.r2.cloudflarestorage.com)")


def _render_backups(d: dict[str, Any]) -> str:
    head = (f"{d['stack']}: {len(d['backups'])} backup(s) in {d['directory']}, newest first (pick the newest taken "
            "BEFORE the damage: its jobs and last write tell)")
    lines = [head]
    for entry in d["backups"]:
        if entry["problem"]:
            lines.append(f"  {entry['backup']}: cannot be restored: {entry['problem']}")
            continue
        others = ", ".join(f"{t}={n}" for t, n in sorted(entry["rows"].items()) if t != "jobs")
        lines.append(f"  {entry['backup']}: taken {entry['taken_at']}, jobs={entry['jobs']}, last write "
                     f"{entry['last_write_at'] or '-'}, migration {entry['newest_migration'] or '-'} ({others})")
    return "\n".join(lines)


def cmd_dr_restore(args: argparse.Namespace) -> int:
    from goldgate.ops import dr
    from goldgate.ops.backup import load_manifest

    platform = _platform(args)
    if args.list:
        if args.backup is not None:
            raise GoldgateError("--list lists the backups and restores nothing: drop --backup, or --list")
        platform.db_path(args.stack)  # an unknown stack is refused here
        directory = platform.home / "backups" / args.stack
        emit(args, {"stack": args.stack, "directory": str(directory), "backups": dr.list_backups(directory)},
             _render_backups)
        return 0
    if args.backup is None:
        raise GoldgateError(f"name the backup to restore, --backup <home>/backups/{args.stack}/<stamp>.sqlite (list "
                            f"them with `goldgate dr-restore {args.stack} --list`)")
    backup = Path(args.backup)
    if backup.exists() and not backup.is_file():  # `.`, a directory or a FIFO: nothing to verify (or to wait on)
        raise GoldgateError(f"--backup {args.backup} is not a file: name a backup, <home>/backups/{args.stack}/"
                            "<stamp>.sqlite (its .manifest.json beside it)")
    target = platform.db_path(args.stack)  # an unknown stack is refused here, before its dir is made
    # A mistyped --backup, or one without its manifest, refused before the stack is held: holding it made the state
    # dir, the stack's dir and its lock files for a restore that never began. Read again under the hold.
    load_manifest(backup)
    # The stack held for the whole restore, as an `up` holds it while it starts: an `up` run meanwhile waits for the
    # restore, then starts the host on the restored database (its host opened the old one, which the restore then
    # replaced with its journal removed under it: the stack went on serving the old database, and wrote to it).
    with StackDir(platform.home, args.stack).restoring() as holder:
        if holder is not None:
            raise StateError(f"{holder} holds stack {args.stack}; nothing was restored. Wait for it, stop the stack "
                             f"(`goldgate down {args.stack}`) and run the restore again")
        # Running or still starting: a host that is starting migrates the database it opened and then serves it.
        if platform.host_pid(args.stack) is not None:
            raise StateError(f"stack {args.stack} is running (or starting); stop it first (`goldgate down "
                             f"{args.stack}`) so nothing writes while its database is replaced")
        with _pruning_held(platform.home, args.stack, f"`goldgate dr-restore {args.stack}`", "nothing was restored"):
            report = dr.restore_into_stack(backup, target, args.stack, args.from_stack)
    if args.json:
        emit(args, {"backup": str(backup), **report.to_dict()}, str)
        return 0
    for line in _restore_lines(args.stack, args.backup, report):
        say(escape_controls(line))
    return 0


def _restore_lines(stack: str, backup: str, report: Any) -> list[str]:
    lines = [f"{stack}: restored {backup} into {report.target} (verified)"]
    if report.kept is not None:
        lines.append(f"{stack}: the previous database is kept at {report.kept}")
    if report.journals_kept:
        lines.append(f"{stack}: the deleted database's journal(s) were moved aside, not deleted: "
                     + ", ".join(str(path) for path in report.journals_kept))
    if report.lost_jobs and report.from_another_stack:
        # Not jobs created after the backup: this stack's own, which a backup of another stack never held. Merged
        # into the other stack's data, the two stacks' jobs would mix.
        ids = ", ".join(report.lost_job_ids) + (", ..." if report.lost_jobs > len(report.lost_job_ids) else "")
        other = report.backup_stack
        lines.append(f"{stack}: {report.lost_jobs} job(s) of {stack}'s replaced database are {stack}'s own, not in "
                     f"{other}'s backup (their ids now answer 404 on {stack}): {ids}. Restoring {other}'s data "
                     f"replaced them, as --from-stack {other} asked; do not merge them into it (the two stacks' jobs "
                     f"would mix). They are kept in {report.kept}; to put {stack}'s own jobs back, restore one of "
                     f"{stack}'s backups (`goldgate dr-restore {stack} --list`)")
    elif report.lost_jobs:
        ids = ", ".join(report.lost_job_ids) + (", ..." if report.lost_jobs > len(report.lost_job_ids) else "")
        lines.append(f"{stack}: WARNING: {report.lost_jobs} job(s) of the replaced database are not in the backup "
                     f"(created after it; their ids now answer 404): {ids}. They are still in {report.kept}: merge "
                     "them back as docs/D1_DISASTER_RECOVERY.md says (\"Jobs the backup lacks\") before "
                     f"`goldgate up {stack}`")
    elif report.lost_reason:
        lines.append(f"{stack}: the jobs of the replaced database were not compared with the backup's: "
                     f"{report.lost_reason}")
    if report.pending_migrations:
        lines.append(f"{stack}: the backup predates {len(report.pending_migrations)} migration(s) that the next "
                     f"`goldgate up {stack}` applies to it: {', '.join(report.pending_migrations)}. If one of them is "
                     "what damaged the database, remove or revert it in migrations/ before `goldgate up`")
    return lines


# -- prune ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _pruning_held(home: Path, stack: str, holder: str, nothing: str) -> Iterator[None]:
    """The stack's prune lock, which its host's scheduled retention takes too: one prune (or drill export) of a
    stack's database at a time, so neither counts rows the other is deleting."""
    from goldgate.local.retention_cron import pruning

    stack_dir = StackDir(home, stack)
    if not stack_dir.root.is_dir():  # never up here (or a file in its place): no database to share, nothing made
        yield
        return
    with pruning(stack_dir, holder) as other:
        if other is not None:
            raise StateError(f"{other} holds {stack}'s database; {nothing}: run this again once it is done")
        yield


def cmd_prune(args: argparse.Namespace) -> int:
    from goldgate.ops import retention

    platform = _platform(args)
    if _on_cloud(args):
        report, database = _cloud_prune(args), args.database_id
    elif args.database_id or args.account_id:  # without --cloud the local stack's database would be pruned
        raise GoldgateError("--database-id and --account-id name a D1 database: add --cloud (or --target cloud) to "
                            "prune it")
    else:
        path = platform.require_migrated(args.stack)
        with (_pruning_held(platform.home, args.stack, f"`goldgate prune {args.stack}`", "nothing was pruned")
              if not args.dry_run else contextlib.nullcontext()):
            report = retention.prune_local(platform.spec(args.stack), path, args.keep_days, args.metrics_keep_days,
                                           dry_run=args.dry_run, clock_checked=args.clock_checked,
                                           progress=progress)
        database = str(path)
    if not report.dry_run:  # the readiness checklist's evidence that the stack's database is pruned
        retention.record(platform.home, report, database, datetime.now(UTC).isoformat(timespec="seconds"))
    emit(args, report.to_dict(), retention.render_text)
    return 0


@dataclass(frozen=True)
class _D1Target:
    """A cloud command's D1: the stack, the database, and how to reach it (the token is never printed)."""

    spec: specs.StackSpec
    database_id: str
    account: str
    token: str
    api_base: str


def _d1_target(args: argparse.Namespace, what: str, permission: str,
               check: Callable[[specs.StackSpec], None] | None = None) -> _D1Target:
    """--database-id, the stack's Pulumi spec, --account-id and CLOUDFLARE_API_TOKEN for `what` (prune, stuck), each
    refused in one line; `check` runs on the spec before any credential is read."""
    from goldgate.ops import cloud_facts

    # A path segment of the API: a pasted path or URL would address another resource.
    database_id = cloud_facts.checked_database_id(args.database_id)
    if not database_id:
        raise GoldgateError("--database-id is required for the cloud (--cloud, --target cloud or "
                            "GOLDGATE_TARGET=cloud): the D1 uuid (`pulumi stack output` or `wrangler d1 info`)")
    spec = specs.load_pulumi(args.stack)
    api_base = args.api_base or stack_cloudflare_api_base(args.stack, specs.STACKS_DIR)
    if check is not None:
        check(spec)
    if args.account_id is not None and not re.fullmatch(r"[0-9a-fA-F]{32}", args.account_id):
        raise GoldgateError(f"--account-id {args.account_id[:64]!r} is not a Cloudflare account id (32 hex, the "
                            "dashboard's Account ID)")
    account = args.account_id or cloud_facts.cloudflare_account(spec)
    token = os.environ.get(cloud_facts.CLOUDFLARE_TOKEN_ENV, "")
    if not token:
        raise GoldgateError(f"{cloud_facts.CLOUDFLARE_TOKEN_ENV} is not set: {what} needs an API token with "
                            f"{permission}")
    return _D1Target(spec, database_id, account, token, api_base)


def _cloud_prune(args: argparse.Namespace) -> Any:
    from goldgate.cloudflare.api import CloudflareApi
    from goldgate.cloudflare.d1 import D1Client
    from goldgate.ops import retention

    d1 = _d1_target(args, "pruning D1", "D1 Edit",  # the keep days are checked before any credential is read
                    lambda spec: retention.check_keep_days(spec, args.keep_days, args.metrics_keep_days))
    with CloudflareApi(d1.token, d1.api_base) as api:
        return retention.prune_cloud(d1.spec, D1Client(api, d1.account), d1.database_id, args.keep_days,
                                     args.metrics_keep_days, dry_run=args.dry_run, clock_checked=args.clock_checked,
                                     progress=progress)


# -- stuck ----------------------------------------------------------------------------------------


def cmd_stuck(args: argparse.Namespace) -> int:
    import dataclasses

    from goldgate.ops import stuck

    platform = _platform(args)
    if _on_cloud(args):
        report = _cloud_stuck(args)
    elif args.database_id or args.account_id:  # without --cloud the local stack's database would be listed
        raise GoldgateError("--database-id and --account-id name a D1 database: add --cloud (or --target cloud) to "
                            "list its stuck jobs")
    else:
        spec = platform.spec(args.stack)  # an unknown stack is refused here, with the stacks this file has
        path = platform.require_migrated(args.stack)
        older = args.older_than if args.older_than is not None else stuck.default_older_than_minutes(spec)
        # Where the service logs a job whose RunPod id it failed to record (job.runpod_id_unrecorded).
        service_log = StackDir(platform.home, args.stack).logs_dir / "service.jsonl"
        # A job created before the running host started went to an earlier host's RunPod, gone since: stuck at once.
        report = stuck.list_local(spec, path, older, args.limit, service_log=service_log,
                                  served_cap=_served_cap(platform, args.stack),
                                  host_started_s=platform.host_started_s(args.stack))
        report = dataclasses.replace(report, queue_diagnosis=_local_diagnosis(args, platform, spec))
    emit(args, report.to_dict(), stuck.render_text)
    return 1 if report.stuck else 0  # a cron alerts on it


# One read each, no retry: a RunPod that does not answer makes a note, not a wait.
_DIAGNOSIS_TIMEOUT_S = 10.0


def _local_diagnosis(args: argparse.Namespace, platform: LocalPlatform, spec: specs.StackSpec) -> Any:
    """Why jobs wait on a running local stack's RunPod (its emulator), read with the key its host holds, as
    the service's recover calls it; a stack that is down has no RunPod to ask."""
    from goldgate.ops import stuck
    from goldgate.runpod import ControlPlaneClient, DataPlaneClient, RetryPolicy

    if args.no_runpod:
        return stuck.not_read(stuck.NOT_ASKED)
    try:
        state = platform.require_running(args.stack)
        key = platform.runpod_api_key(args.stack)
    except GoldgateError:
        return stuck.not_read(f"not asked: stack {args.stack} is down, and its local RunPod's queue "
                              "went with it (no listed job can end there); `goldgate up "
                              f"{args.stack}`, then recover each")
    once = {"retry": RetryPolicy(attempts=1), "timeout_s": _DIAGNOSIS_TIMEOUT_S}

    def read() -> Any:
        with ControlPlaneClient(key, state["runpod_api_base"], **once) as control:
            endpoint = control.get_endpoint(state["endpoint_id"])
        with DataPlaneClient(key, endpoint.id, state["runpod_endpoint_base"], **once) as plane:
            return endpoint.id, endpoint.workers_max, plane.health()

    return stuck.read_diagnosis(read, spec, "local")


def _cloud_diagnosis(args: argparse.Namespace, spec: specs.StackSpec) -> Any:
    """Why jobs wait on the cloud stack's endpoint, read with RUNPOD_API_KEY(_<STACK>) as the checklist reads
    it; without a key the list stands and the line says how to get the diagnosis."""
    from goldgate.ops import cloud_facts, stuck
    from goldgate.runpod import ControlPlaneClient, DataPlaneClient, RetryPolicy

    if args.no_runpod:
        return stuck.not_read(stuck.NOT_ASKED)
    try:
        key = cloud_facts.credentials_from_env([spec.name]).runpod_api_keys[spec.name]
    except GoldgateError:
        variable = f"{cloud_facts.RUNPOD_KEY_ENV}_{spec.name.upper().replace('-', '_')}"
        return stuck.not_read(f"not asked: set {cloud_facts.RUNPOD_KEY_ENV} (or {variable}) and run "
                              "it again for why jobs wait (the endpoint's max workers and /health, read "
                              "once)")
    assert spec.cloud is not None  # load_pulumi guarantees the cloud block
    cloud = spec.cloud
    once = {"retry": RetryPolicy(attempts=1), "timeout_s": _DIAGNOSIS_TIMEOUT_S}

    def read() -> Any:
        with ControlPlaneClient(key, cloud.runpod_api_base, **once) as control:
            endpoint = cloud_facts.find_endpoint(control, spec.endpoint.name, spec.name)
        with DataPlaneClient(key, endpoint.id, cloud.runpod_endpoint_base, **once) as plane:
            return endpoint.id, endpoint.workers_max, plane.health()

    return stuck.read_diagnosis(read, spec, "cloud")


def _served_cap(platform: LocalPlatform, stack: str) -> int | None:
    """The api.max_jobs_in_flight the stack's running service enforces, from the config its host wrote
    it (stackhost.py, `service.json`); None for a stack that is down or a config that does not say. It
    stays the one the host started with when the stacks file is edited: read from the file, a full stack
    was shown as not full."""
    if platform.running_host(stack) is None:
        return None
    config = StackDir(platform.home, stack).service_config()
    cap = config.get("max_jobs_in_flight") if config is not None else None
    return cap if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else None


def _cloud_stuck(args: argparse.Namespace) -> Any:
    import dataclasses

    from goldgate.cloudflare.api import CloudflareApi
    from goldgate.cloudflare.d1 import D1Client
    from goldgate.ops import stuck

    d1 = _d1_target(args, "listing D1's stuck jobs", "D1 Read")
    older = args.older_than if args.older_than is not None else stuck.default_older_than_minutes(d1.spec)
    with CloudflareApi(d1.token, d1.api_base) as api:
        report = stuck.list_cloud(d1.spec, D1Client(api, d1.account), d1.database_id, older, args.limit)
    return dataclasses.replace(report, queue_diagnosis=_cloud_diagnosis(args, d1.spec))


# -- cancel ---------------------------------------------------------------------------------------

def cmd_cancel(args: argparse.Namespace) -> int:
    """`POST /api/cancel/<job_id>` on a running local stack or a cloud one (`--target cloud`), as a client sends
    it (service/cancel.py). Its
    arguments are `goldgate recover`'s (the job, then --stack): the line `goldgate stuck` prints for a job
    is one word away. With --all-queued or --all-active instead of a job: every such job (`_cancel_selection`)."""
    from goldgate.commands.local import _job_id, stack_api

    given = [f"--{name.replace('_', '-')}" for name in _SELECTION_OPTIONS if getattr(args, name, None)]
    # --yes and the D1 to read from say nothing of which jobs: told apart, not as narrowing a selection.
    acting = [f"--{name.replace('_', '-')}" for name in _SELECTION_ONLY if getattr(args, name, None)]
    are = "is" if len(acting) == 1 else "are"
    if args.job_id is None:
        if not (args.all_queued or args.all_active):
            said = ([f"{' and '.join(given)} narrow{'s' if len(given) == 1 else ''} a selection"] if given else []) \
                + ([f"{' and '.join(acting)} {are} for a selection"] if acting else [])
            raise GoldgateError(f"{'; '.join(said)}{': ' if said else ''}name the job to cancel (`goldgate cancel "
                                f"<job_id> --stack {args.stack}`), or select jobs with --all-queued or --all-active")
        return _cancel_selection(args)
    if given:
        raise GoldgateError(f"a job id and {' and '.join(given)} both say which jobs to cancel: give the job id "
                            "alone, or drop it to cancel a selection")
    if acting:
        raise GoldgateError(f"{' and '.join(acting)} {are} for a selection (--all-queued or --all-active): "
                            f"`goldgate cancel <job_id> --stack {args.stack}` cancels one job at once, without "
                            f"{'it' if len(acting) == 1 else 'them'}")
    job_id = _job_id(args.job_id)  # before anything is read: it becomes a path segment of the URL
    api = stack_api(args, args.stack)
    try:
        answer = api.call("POST", f"/api/cancel/{job_id}")
    finally:
        api.close()
    emit(args, answer, _cancelled_line)
    return 0


# The options of a selection (--all-queued or --all-active), refused with a job id: each says which jobs to cancel;
# and those that only act on one (--yes) or say where its jobs are read from (the D1).
_SELECTION_OPTIONS = ("all_queued", "all_active", "workflow", "client", "created_after", "created_before", "limit")
_SELECTION_ONLY = ("yes", "database_id", "account_id", "api_base")


def _cancel_selection(args: argparse.Namespace) -> int:
    """The jobs --all-queued or --all-active selects, read from the stack's database (its SQLite, or its D1 with
    --target cloud) as `goldgate stuck` reads them; listed, or with --yes cancelled one by one through the stack's
    API, as `goldgate cancel <job_id>` cancels one (goldgate.ops.bulk_cancel)."""
    from goldgate.commands.local import stack_api
    from goldgate.ops import bulk_cancel

    selection = bulk_cancel.Selection(
        bulk_cancel.ACTIVE if args.all_active else bulk_cancel.QUEUED, args.workflow, args.created_after,
        args.created_before, args.limit or bulk_cancel.DEFAULT_LIMIT, args.client)
    if (selection.created_after and selection.created_before
            and selection.created_after >= selection.created_before):  # the same normalized form: text order
        raise GoldgateError(f"--created-after {selection.created_after} is not before --created-before "
                            f"{selection.created_before}: no job can be created in between")
    target = "cloud" if args.target == "cloud" else "local"
    if target == "cloud":
        selected = _cloud_selection(args, selection)
    else:
        if args.database_id or args.account_id:  # without --target cloud the local stack's jobs would be cancelled
            raise GoldgateError("--database-id and --account-id name a D1 database: add --target cloud to cancel "
                                "its jobs")
        platform = _platform(args)
        platform.spec(args.stack)  # an unknown stack is refused here, with the stacks this file has
        path = platform.require_migrated(args.stack)
        selected = bulk_cancel.select_local(path, args.stack, selection)
    command = _selection_command(args, selection)
    if not args.yes or not selected.jobs:
        preview = bulk_cancel.report(args.stack, target, selection, selected, command)
        emit(args, preview.to_dict(), bulk_cancel.render_text)
        return bulk_cancel.exit_code(preview)
    api = stack_api(args, args.stack)  # refused here, before any cancel, when the stack is not up
    suffix = " --target cloud" if target == "cloud" else ""
    progress(f"cancelling {len(selected.jobs)} job(s) on {args.stack} through its API ({bulk_cancel.order(selection)}), "
             f"{bulk_cancel.Pace().concurrency} at a time; Ctrl-C stops the sending")
    try:
        results, interrupted, stopped = bulk_cancel.cancel_all(
            selected.jobs, bulk_cancel.http_sender(api.http),
            lambda job_id: f"goldgate cancel {job_id} --stack {args.stack}{suffix}", progress=progress,
            recover_line=lambda job_id: f"goldgate recover {job_id} --stack {args.stack}{suffix}")
    finally:
        api.close()
    outcome = bulk_cancel.report(args.stack, target, selection, selected, command, results, interrupted, stopped)
    emit(args, outcome.to_dict(), bulk_cancel.render_text)
    if interrupted is not None:  # the codes a shell gives a process it ends, as every command's interrupt
        return 130 if interrupted == "interrupted" else 143
    return bulk_cancel.exit_code(outcome)


def _cloud_selection(args: argparse.Namespace, selection: Any) -> Any:
    from goldgate.cloudflare.api import CloudflareApi
    from goldgate.cloudflare.d1 import D1Client
    from goldgate.ops import bulk_cancel

    d1 = _d1_target(args, "reading D1's jobs to cancel", "D1 Read")
    with CloudflareApi(d1.token, d1.api_base) as api:
        return bulk_cancel.select_cloud(D1Client(api, d1.account), d1.database_id, d1.spec.name, selection)


def _selection_command(args: argparse.Namespace, selection: Any) -> str:
    """The command that cancels this selection: the preview's line to run with --yes."""
    import shlex

    words = ["goldgate", "cancel", "--all-active" if args.all_active else "--all-queued", "--stack", args.stack]
    for option, value in (("--client", selection.client), ("--workflow", selection.workflow_id),
                          ("--created-after", selection.created_after),
                          ("--created-before", selection.created_before), ("--limit", args.limit)):
        if value is not None:
            words += [option, str(value)]
    if args.target == "cloud":
        words += ["--target", "cloud", "--database-id", args.database_id]
        words += ["--account-id", args.account_id] if args.account_id else []
    return shlex.join([*words, "--yes"])


def _cancelled_line(answer: dict[str, Any]) -> str:
    line = f"{answer.get('job_id')}: {answer.get('status')} ({answer.get('reason')})"
    if not answer.get("cancelled"):
        line += ", not cancelled by this request"
    return line + (f"\n  {answer['message']}" if answer.get("message") else "")


# -- metrics --------------------------------------------------------------------------------------


def cmd_metrics(args: argparse.Namespace) -> int:
    from goldgate.ops import metrics_report

    out = Path(args.html) if args.html else None
    if out is not None:  # refused before the database is read, or the cloud's D1 asked for the rows
        _check_html_target(out)
    if args.target == "cloud":
        report = _cloud_metrics(args)
    else:
        _refuse_cloud_options(args, ("stacks_dir", "database_id", "cloudflare_api_base"), "--target cloud")
        platform = _platform(args)
        report = metrics_report.report_from_sqlite(platform.db_path(args.stack), args.stack, args.since,
                                                   args.by_workflow_version, args.spend)
        report["pinned_image"] = _pinned_image(platform, args.stack)
        report["error_rate_threshold"] = _error_rate_threshold(lambda: platform.spec(args.stack))
        _with_spend_limit(report, lambda: _local_spend_limit(platform, args.stack),
                          lambda: _local_spend_limit(platform, args.stack, "client_daily_spend_limit_usd"))
    # --since is stored normalized (UTC, ms, Z): text order is time order
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if args.since and args.since > now:
        progress(f"--since {args.since} is in the future (now {now}): no job was created after it yet, "
                 "so the report counts 0 jobs")
    if out is not None:
        # A short name of its own: the report's name with a prefix and suffix could pass the file system's limit.
        tmp = out.with_name(f".goldgate-metrics.{os.getpid()}.tmp")
        try:  # written beside it, then renamed: a failed write never leaves half a report over the old one
            tmp.write_text(metrics_report.render_html(report), encoding="utf-8")
            os.replace(tmp, out)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise GoldgateError(f"cannot write {out}: {exc.strerror}") from None
        progress(f"wrote {out}")
    emit(args, report, metrics_report.render_text)
    return 0


def _error_rate_threshold(spec: Callable[[], Any]) -> float | None:
    """The stack's thresholds.error_rate, for the text to flag a breach; None when its spec cannot be read (the
    metrics are still worth reading)."""
    try:
        return float(spec().thresholds.error_rate)
    except GoldgateError:
        return None


def _with_spend_limit(report: dict[str, Any], limit: Callable[[], float | None],
                      client_limit: Callable[[], float | None] | None = None) -> None:
    """Today's spend gets the api.daily_spend_limit_usd creates are refused by (None: no limit), and `limit_known`
    false, the limit left out, when it cannot be read: "no limit" there would be a guess. Alike `client_limit_usd`
    and `client_limit_known`, each named client's own (api.client_daily_spend_limit_usd)."""
    if report.get("daily_spend") is None:
        return
    for prefix, read in (("limit", limit), ("client_limit", client_limit)):
        if read is None:
            continue
        try:
            report["daily_spend"][f"{prefix}_usd"] = read()
            report["daily_spend"][f"{prefix}_known"] = True
        except GoldgateError:
            report["daily_spend"][f"{prefix}_usd"] = None
            report["daily_spend"][f"{prefix}_known"] = False


def _local_spend_limit(platform: LocalPlatform, stack: str, key: str = "daily_spend_limit_usd") -> float | None:
    """The daily spend limit (`key`: the stack's, or client_daily_spend_limit_usd, each client's own) a local stack's
    creates are refused by: a running stack's is the one its service was
    started or reloaded with (`service.json`; an edit of the stacks file reaches it only at `goldgate reload` or the next `down`
    and `up`, so the file would show a limit nobody enforces, and hide the one that refuses clients); a stopped
    stack's, the stacks file's (what `up` will start it with). A running stack's config that does not say is unknown
    (a GoldgateError)."""
    if platform.running_host(stack) is None:
        return getattr(platform.spec(stack).api, key)
    config = StackDir(platform.home, stack).service_config()
    if config is None:
        raise GoldgateError(f"the running {stack} stack's service config cannot be read")
    limit = config.get(key)
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int | float):
        raise GoldgateError(f"the running {stack} stack's service config has no number for {key}")
    return float(limit)


def _pinned_image(platform: LocalPlatform, stack: str) -> str | None:
    """The image the stack's pin names, for the metrics to say which release a rollback would move it
    off; a pin goldgate cannot read is left to `goldgate status`, which explains it: the metrics are still
    worth reading."""
    try:
        return platform.pinned_image(stack)
    except GoldgateError:
        return None


_HTML_REPORT_HEAD = "<!doctype html>"
_HTML_REPORT_TITLE = "<title>goldgate metrics:"


def _check_html_target(out: Path) -> None:
    """--html FILE replaces only a report goldgate wrote: a typo must not overwrite another file (as root,
    `--html /etc/passwd` did), and a FIFO would block the write forever."""
    try:
        mode = out.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # a new file (or a path the write will say is wrong)
        return
    except OSError as exc:  # a name too long, a loop of links, a directory it may not search
        raise GoldgateError(f"--html {out}: {exc.strerror}; name a new .html file") from None
    if not stat.S_ISREG(mode):
        raise GoldgateError(f"--html {out} is not a regular file; name a new .html file")
    try:
        with out.open("rb") as fh:
            head = fh.read(2048).decode("utf-8", "replace")
    except OSError as exc:
        raise GoldgateError(f"cannot read {out} to check it before replacing it: {exc.strerror}") from None
    if head and not (head.lower().startswith(_HTML_REPORT_HEAD) and _HTML_REPORT_TITLE in head):
        raise GoldgateError(f"--html {out} exists and is not an HTML report goldgate wrote; it is left as it is: "
                            "name a new file or remove it first")


def _cloud_metrics(args: argparse.Namespace) -> dict[str, Any]:
    from goldgate.cloudflare.api import CloudflareApi
    from goldgate.cloudflare.d1 import D1Client
    from goldgate.ops import cloud_facts
    from goldgate.ops.metrics_report import report_from_d1

    stacks_dir = Path(args.stacks_dir) if args.stacks_dir else specs.STACKS_DIR
    spec, pinned = cloud_facts.load_cloud_stack(args.stack, stacks_dir)
    api_base = args.cloudflare_api_base or stack_cloudflare_api_base(args.stack, stacks_dir)
    account = cloud_facts.cloudflare_account(spec)
    creds = cloud_facts.credentials_from_env((), need_runpod=False)
    with CloudflareApi(creds.cloudflare_api_token, api_base) as api:
        d1 = D1Client(api, account)
        database_id = cloud_facts.checked_database_id(args.database_id) or cloud_facts.find_database(
            d1, spec.database.name)
        progress(f"reading job_metrics from D1 {spec.database.name} ({database_id})")
        # The checkout's pin: what `goldgate rollback --target cloud` moves the stack off.
        report = {**report_from_d1(d1, database_id, args.stack, args.since, args.by_workflow_version,
                                    args.spend),
                  "pinned_image": pinned,
                  "error_rate_threshold": spec.thresholds.error_rate}
        _with_spend_limit(report, lambda: spec.api.daily_spend_limit_usd,
                          lambda: spec.api.client_daily_spend_limit_usd)
        return report


# -- checklist ------------------------------------------------------------------------------------

def cmd_checklist(args: argparse.Namespace) -> int:
    from goldgate.ops import checklist

    if args.target == "cloud":
        return _cloud_checklist(args)
    _refuse_cloud_options(args, ("stacks_dir", "database_id", "logs_dir", "cloudflare_api_base"), "--target cloud")
    from goldgate.ops.checklist_facts import gather_local

    platform = _platform(args)
    facts = gather_local(platform, args.stack, progress=progress, live=not args.offline,
                         reports_dir=Path(args.reports_dir) if args.reports_dir else None)
    results = checklist.run_checks(facts)
    emit(args, checklist.to_json(args.stack, results), checklist.render_text)
    return 1 if checklist.failed(results) else 0


def _render_cloud_checklist(data: dict[str, Any]) -> str:
    from goldgate.ops import checklist

    notes = data["cloud"]["notes"]
    return checklist.render_text(data) + ("\n\ncloud notes:\n" + "\n".join(f"  - {n}" for n in notes) if notes else "")


def _cloud_checklist(args: argparse.Namespace) -> int:
    from goldgate.ops import checklist, cloud_facts

    stacks_dir = Path(args.stacks_dir) if args.stacks_dir else specs.STACKS_DIR
    spec, _ = cloud_facts.load_cloud_stack(args.stack, stacks_dir)  # an unknown stack: one line, before credentials
    api_base = args.cloudflare_api_base or stack_cloudflare_api_base(args.stack, stacks_dir)
    cloud_facts.cloudflare_account(spec)
    pair = cloud_facts.stack_pair(args.stack, spec, stacks_dir)
    creds = cloud_facts.credentials_from_env([n for n in pair.values() if n])
    reading = cloud_facts.read_cloud(
        args.stack, creds, home=_platform(args).home, stacks_dir=stacks_dir,
        reports_dir=Path(args.reports_dir) if args.reports_dir else None,
        logs_dir=Path(args.logs_dir) if args.logs_dir else None, cloudflare_api_base=api_base,
        database_id=args.database_id, progress=progress)
    results = checklist.run_checks(reading.facts)
    data = {**checklist.to_json(args.stack, results), "target": "cloud", "cloud": reading.to_dict()}
    emit(args, data, _render_cloud_checklist)
    return 1 if checklist.failed(results) else 0


API_BASE_KEY = f"{specs.CONFIG_NAMESPACE}:{specs.CLOUDFLARE_API_BASE_CONFIG_KEY}"


def stack_cloudflare_api_base(stack: str, stacks_dir: Path) -> str:
    """The Cloudflare API the stack's Pulumi program calls (infra/program.py, read_config): `goldgate:cloudflareApiBase`
    of stacks/Pulumi.<stack>.yaml when set, else Cloudflare's own, under the program's rule (an https:// URL, plain
    http:// only to this machine). The operations commands read and write the same D1 the program made: an
    operator who routes the stack through an egress proxy must not have them go around it."""
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    doc = specs.read_yaml(path)
    config = doc.get("config") if isinstance(doc, Mapping) else None
    value = config.get(API_BASE_KEY) if isinstance(config, Mapping) else None
    if isinstance(value, Mapping) and "secure" in value:
        raise GoldgateError(f"{path}: {API_BASE_KEY} is stored as a secret, which goldgate cannot read without "
                            f"Pulumi: it is no credential, so set it in plain text (`pulumi config set {API_BASE_KEY} "
                            f"<url> --stack {stack}`)")
    try:
        return specs.checked_cloudflare_api_base(value, str(path))  # the program's own rule (infra/program.py)
    except SpecError as exc:
        raise GoldgateError(f"{exc} (the stack's `pulumi up` refuses it too): fix it in the stack file") from None
