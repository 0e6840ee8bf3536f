"""The production-hardening checklist, every line a check over `Facts` with its evidence.

Lines are the seed's own (../shared/seed/production-hardening-checklist.md, Thai and English), in
its order, then goldgate's own for the database's upkeep. A check answers pass, fail, or n/a with
the reason it does not apply here; `goldgate checklist` exits non-zero when any applicable line
fails. A line may also warn: it holds today but will not for long (a database filling up); a
warning is shown and counted, and fails nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from goldgate.cloudflare.d1 import MAX_DATABASE_BYTES
from goldgate.ops.checklist_facts import DatabaseRoom, Facts, GoldenSuite, MigrationFacts
from goldgate.release.gate import CLOCK_SKEW_S, _ran_the_suite, age_s, commands_for, report_freshness
from goldgate.release.ledger import judged_image
from goldgate.spec import RetentionSpec, is_digest_ref

PASS, WARN, FAIL, NA = "pass", "warn", "fail", "n/a"
# docs/D1_DISASTER_RECOVERY.md, "RPO and RTO": the cloud PROD drill is D1's backup, run daily for an RPO of 24 h; an
# hour more lets the scheduled job start and finish. Any other drill (a local stack's, cloud STAGING's) backs up no
# production data: weekly is a rehearsal. Keyed "cloud" (PROD's backup) and "local" (a rehearsal).
DRILL_MAX_AGE_S = {"cloud": 25 * 3600, "local": 7 * 86_400}
RTO_TARGET_S = 30 * 60  # the same table: a verified copy within 30 minutes of starting the restore
# keep_days is at least the result ttl (30 days by default): pruned monthly, D1 holds at most about two periods.
PRUNE_MAX_AGE_S = 31 * 86_400
EXIT_MEAN_LATENCY_S = 360.0  # the seed's exit criterion: mean latency <= 6 minutes
# D1 refuses every write at its cap (the service answers 503 storage_full). A fifth of it left (2 GB,
# the rows of hundreds of thousands of jobs) is time for a prune or a declared retention to take
# effect, so warn. At 95 % a burst of jobs may reach the cap before anyone acts: fail.
D1_WARN_SHARE, D1_FAIL_SHARE = 0.80, 0.95
PRUNE_SUGGESTED_DAYS = 30  # the prune a room line suggests keeps a month (or the result ttl, when longer)
# Local: one disk holds the database, its WAL, the results (objects/) and the logs, all growing with
# jobs, and a prune needs room in the WAL before it frees any. Under 256 MiB a WAL checkpoint or a
# batch of results can fill it: fail. Under 1 GiB, warn; and under 10 % of the disk while that is
# less than D1's cap (a big disk 90 % full with over 10 GB free still holds a database as large as
# the cloud's: no warning for it).
DISK_FAIL_BYTES, DISK_WARN_BYTES, DISK_WARN_SHARE = 256 * 1024 ** 2, 1024 ** 3, 0.10


@dataclass(frozen=True)
class CheckResult:
    id: str
    section: str
    line: str
    status: str
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Verdict = tuple[str, str]


@dataclass(frozen=True)
class Check:
    id: str
    section: str
    line: str
    judge: Callable[[Facts], Verdict]


def _ok(cond: bool, yes: str, no: str) -> Verdict:
    return (PASS, yes) if cond else (FAIL, no)


# The evidence is read by people (`--json` carries the same words): figures in words, no Python reprs.

def _names(items: Any, most: int = 10) -> str:
    """Names (ids, paths, images) as a list in words: `a, b, c`, and how many more past `most`."""
    items = [str(i) for i in items]
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more if items else "none"


def _counts(by_status: Mapping[str, int]) -> str:
    """`{'completed': 30, 'failed': 2}` as `30 completed, 2 failed`: the largest count first."""
    return ", ".join(f"{n} {status}" for status, n in sorted(by_status.items(), key=lambda kv: (-kv[1], kv[0])))


def _seconds(value: Any) -> str:
    """A measured duration as people read it: `39.6 s` (a measure to the microsecond says no more), `0.012 s`."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "not measured" if value is None else f"{str(value)[:40]!r} (not a number)"
    return f"{value:.1f} s" if value >= 1 or value == 0 else f"{value:.2g} s"


def _entries(f: Facts, kind: str, **match: Any) -> list[Any]:
    return [e for e in f.ledger or () if e.kind == kind and all(e.get(k) == v for k, v in match.items())]


_NOT_THE_SUITE = "a `golden --case` or `--smoke` run is not the suite"


def _suite_passed_on_staging(f: Facts, **match: Any) -> list[Any]:
    """The ledger's golden runs on STAGING that passed the whole suite (`suite` full, no `--case`, and every case of
    the checkout's suite as it defines it): what "passed golden on STAGING" means, as promote's gate takes it. A
    passing `golden --case` run looked into the cases it named, and a `--smoke` run ran the smoke cases alone: neither
    is a verdict on the image, and counting them called a release promoted on one case's pass (an older gate let such
    a report through) tested. A `golden --cases-dir <a subset>` run is recorded as suite "full" all the same: the
    gate's own `report_cases` judgement (`_ran_the_suite`, over the case digests the run recorded) tells it apart.
    These lines judge history, the gate judges now: a run of the checkout's own cases dir ran the suite as it stood
    then (a case added or edited since would otherwise fail every past release; the gate asks the next promotion for
    a new run), and an entry of an older goldgate, which recorded no case digests, is not called a subset on no
    evidence."""
    runs = [e for e in _entries(f, "golden", stack="staging", passed=True, **match)
            if e.get("suite") == "full" and judged_image(e)]
    suite = f.golden_suite
    if suite is None:   # facts that do not say what the suite is (not read): judged as before
        return [] if f.golden_suite_error else runs
    return [e for e in runs if e.get("suite_cases") is None or e.get("cases_dir") == suite.where
            or _ran_suite(f, suite, e)[0]]


def _not_the_suite(f: Facts, **match: Any) -> str:
    """Why no passing golden run on STAGING (of `match`) counts as the suite, for the evidence: the gate's words on
    the newest passing full run that did not run the checkout's suite (a `--cases-dir <a subset>` run), else that a
    `--case` or `--smoke` run is not the suite; or why the suite could not be read."""
    if f.golden_suite_error:
        return f"the golden suite could not be read, so no run can be judged against it: {f.golden_suite_error}"
    runs = [e for e in _entries(f, "golden", stack="staging", passed=True, **match)
            if e.get("suite") == "full" and judged_image(e)]
    if f.golden_suite is not None and runs:   # each refused by the gate's judgement: the newest one's words
        return _ran_suite(f, f.golden_suite, runs[-1])[1]
    return _NOT_THE_SUITE


def _report_not_the_suite(f: Facts) -> str | None:
    """Why the golden report read (latest.json) is no run of the checkout's suite, in the gate's words, when the
    ledger's entry for it (matched by its sha256, as the gate finds it) says so: a `golden --cases-dir <a subset>`
    run writes latest.json too. None when it ran the suite, or nothing says (no suite read, no entry for it)."""
    if f.golden_suite is None or f.golden_sha256 is None:
        return None
    runs = [e for e in f.ledger or () if e.kind == "golden" and e.get("report_sha256") == f.golden_sha256]
    if not runs:
        return None
    ran, detail = _ran_suite(f, f.golden_suite, runs[-1])
    return None if ran else detail


def _ran_suite(f: Facts, suite: GoldenSuite, run: Any) -> tuple[bool, str]:
    """The gate's `report_cases` verdict (passed, detail) on the golden run `run` (a ledger entry), over `suite`."""
    spec = f.specs.get("staging")
    recorded = run.to_dict() if hasattr(run, "to_dict") else run   # the gate reads `seq` among the entry's fields
    return _ran_the_suite(recorded, suite.definitions, suite.where, spec.name if spec is not None else "staging",
                          commands_for(f.target))


def _own_role(f: Facts) -> str | None:
    spec = next((s for s in f.specs.values() if s.name == f.stack), None)
    if spec is not None:
        return spec.role
    return f.stack if f.stack in f.images else None


def _own_image(f: Facts) -> str | None:
    """The image the judged stack pins now: the lines about its jobs and workers judge this image's."""
    role = _own_role(f)
    return f.images.get(role) if role else None


def _serving(f: Facts, image: str, logs: bool = False, startup: bool = False) -> str:
    """`image`, and since when its figures count (the ledger change that put it on the stack; the gatherer scoped
    the figures to it): a fault the stack had before that change, now recovered, is not this release's.
    `startup`: its `models_loaded` lines, counted since the switch to it (a redeploy of it keeps warm workers)."""
    facts = f.logs if logs else f.jobs
    window = facts.windows.get(image) if facts is not None else None
    if window is None:
        return image
    return f"{image} {window.startup_words() if startup else window.to_words()}"


# -- RunPod worker -------------------------------------------------------------------------------

def staging_separate(f: Facts) -> Verdict:
    s, p = f.specs.get("staging"), f.specs.get("prod")
    if s is None or p is None:
        missing = "; ".join(f"{r}: {f.spec_errors.get(r, 'missing')}" for r in ("staging", "prod") if r not in f.specs)
        if "network_volume_id" in missing:  # judged by its own line; the rest of the spec is still separate
            return NA, f"PROD spec refused for its network volume (see that line): {missing}"
        return FAIL, f"cannot compare STAGING and PROD: {missing}"
    same = [k for k, v in s.resource_names().items() if p.resource_names()[k] == v]
    # A bucket of one stack named as the other's bucket of the other kind is as shared: STAGING's workers, which
    # hold a token for its results bucket, would reach PROD's database backups in it (or its drill would write
    # STAGING's backups where PROD's workers reach them).
    crossed = [f"STAGING's storage.{sk} is PROD's storage.{pk} ({s.resource_names()[sk]})"
               for sk, pk in (("bucket", "backup_bucket"), ("backup_bucket", "bucket"))
               if s.resource_names()[sk] == p.resource_names()[pk]]
    return _ok(not same and not crossed,
               f"distinct endpoints ({s.endpoint.name} / {p.endpoint.name}), buckets, databases, scripts",
               "; ".join(([f"STAGING and PROD share: {', '.join(same)}"] if same else []) + crossed))


def _deploy_staging(f: Facts, image: str | None) -> str:
    """The commands that deploy `image` (None: a new build) to STAGING through the pipeline, which records it in the
    ledger: `deploy` needs --image, and locally a stack that is up; `up` pins an image but records no deploy."""
    ref = image or "<repo@sha256:...>"
    if f.target == "cloud":
        return f"`goldgate deploy staging --target cloud --image {ref}`" + ("" if image else " (`goldgate build "
                                                                             "--repo REPO` prints the ref)")
    if image:
        return f"`goldgate deploy staging --image {image}` (the stack up: `goldgate up staging`)"
    return ("`goldgate release`, or `goldgate up staging`, `goldgate build` and `goldgate deploy staging --image "
            "<the ref build printed>`")


def staging_image_via_pipeline(f: Facts) -> Verdict:
    image = f.images.get("staging")
    if not image:
        return FAIL, f"STAGING has no pinned image; deploy one with {_deploy_staging(f, None)}"
    if not is_digest_ref(image):
        return FAIL, f"STAGING runs {image}, not pinned by digest"
    deploys = _entries(f, "deploy", stack="staging", image=image)
    if deploys and deploys[-1].get("rollout_confirmed") is False:
        # The stack took the image (pulumi up applied it), but whether its workers serve it was never seen: the gate
        # refuses a golden run that followed such a deploy (staging_rollout) until a deploy confirms it.
        return FAIL, (f"STAGING runs {image}, but its rollout was not confirmed (ledger #{deploys[-1].seq}): deploy "
                      f"it again with {_deploy_staging(f, image)}")
    if not deploys and f.served.get("staging") == image:
        # `up` pinned it unrecorded: the working tree's image at a first start, or a deploy whose host died as it
        # redeployed (the pin moved, nothing recorded), which `up` completed. Not a pin by hand.
        return FAIL, (f"STAGING runs {image}, which its host serves, but the ledger records no deploy of it: "
                      f"`goldgate deploy staging --image {image}` records it, then `goldgate golden staging` tests it "
                      "(an `up` pinned it: the working tree's image at a first start, or a deploy cut short, which "
                      "it completed)")
    return _ok(bool(deploys), f"{image} deployed by the pipeline (ledger deploy #{deploys[-1].seq})" if deploys else "",
               f"STAGING runs {image} but the ledger records no deploy of it (pinned by hand?); "
               f"deploy it through {_deploy_staging(f, image)}")


def golden_before_promote(f: Facts) -> Verdict:
    if f.ledger is None:
        return FAIL, f.ledger_error or "no ledger"
    intents = {e.seq: e for e in _entries(f, "promotion", phase="intent")}
    promoted = _entries(f, "promotion", phase="outcome", outcome="promoted")
    if not promoted:
        return NA, "no promotion recorded yet"
    bad = [e.seq for e in promoted if not ((intents.get(e.get("intent_seq")) or e).get("gate") or {}).get("passed")]
    goldens = {e.get("image") for e in _suite_passed_on_staging(f)}
    untested = [e.get("image") for e in promoted if e.get("image") not in goldens]
    problems = ([f"promotion(s) without a passing gate: ledger {_names(f'#{seq}' for seq in bad)}"] if bad else []) \
        + ([(f"image(s) promoted without a passing full golden run on STAGING: {_names(untested)} "
             f"({_not_the_suite(f, image=untested[-1])})")] if untested else [])
    return _ok(not bad and not untested, f"all {len(promoted)} promotions passed the golden gate on STAGING first",
               "; ".join(problems))


def prod_same_digest(f: Facts) -> Verdict:
    image = f.images.get("prod")
    if not image:
        return FAIL, "PROD has no pinned image"
    if not is_digest_ref(image):
        return FAIL, f"PROD runs {image!r}, which is not pinned by digest (a tag can be re-pointed)"
    outcomes = [e for e in f.ledger or () if e.kind in ("promotion", "rollback") and e.get("phase") == "outcome"
                and e.get("prod_image")]
    last = outcomes[-1] if outcomes else None
    if last is None or last.get("prod_image") != image:
        return FAIL, f"PROD runs {image}, which no promotion or rollback in the ledger put there"
    tested = _suite_passed_on_staging(f, image=image)
    put = "promoted from STAGING" if last.kind == "promotion" else "rolled back to"
    return _ok(bool(tested), f"PROD runs {image}, {put} (ledger #{last.seq}); it passed golden on STAGING",
               f"PROD runs {image}, but STAGING never passed the full golden suite with it "
               f"({_not_the_suite(f, image=image)})")


def rollback_ready(f: Facts) -> Verdict:
    from goldgate.release.history import last_verified, verified_releases

    image = f.images.get("prod")
    entries = list(f.ledger or ())
    target = last_verified(entries, exclude=image)
    if target:
        return PASS, f"rollback target: {target.release_id or '-'} {target.image} (verified {target.verified_at})"
    verified = verified_releases(entries)
    if not verified:
        return FAIL, "no verified release to roll back to in the ledger"
    # Earlier by when each release first served PROD verified: a rollback re-verifies the release it pins, so
    # the order of last verification would call a newer release "earlier" after rolling back to the oldest.
    first = _first_verified(entries)
    earlier = [r for r in verified if r.image != image and first.get(r.image, 0) < first.get(image, float("inf"))]
    if not earlier:
        newer = [r for r in verified if r.image != image]
        pin = (f"; newer verified release {newer[-1].release_id or '-'} {newer[-1].image} can be pinned on purpose "
               f"with `goldgate rollback --to {newer[-1].release_id or newer[-1].image}`") if newer else ""
        return NA, f"PROD runs its oldest verified release ({image}): nothing earlier to pin yet{pin}"
    # `goldgate history` lists them as verified: say why `goldgate rollback` still has no target
    left = earlier[-1]
    return FAIL, (f"`goldgate rollback` has no target: a rollback took PROD off every earlier verified release "
                  f"since it was verified; the newest, {left.release_id or '-'} {left.image}, can be pinned on "
                  f"purpose with `goldgate rollback --to {left.release_id or left.image}`")


def _first_verified(entries: list[Any]) -> dict[str, int]:
    """image -> the ledger seq at which PROD first served it with its smoke cases passing (as `verified_releases`
    counts a verification: under a ledger key, only an authenticated one)."""
    from goldgate.release.history import VERIFIED_OUTCOMES

    first: dict[str, int] = {}
    for e in entries:
        if e.kind in ("promotion", "rollback") and e.get("phase") == "outcome" and e.get("stack", "prod") == "prod" \
                and e.get("outcome") in VERIFIED_OUTCOMES and e.get("prod_image") and e.authentic:
            first.setdefault(e.get("prod_image"), e.seq)
    return first


# -- workflow / models ---------------------------------------------------------------------------

def workflow_version_set(f: Facts) -> Verdict:
    versions = {r: s.workflow_version for r, s in f.specs.items()}
    if not versions:
        return FAIL, "no stack spec loaded"
    unset = [r for r, v in sorted(versions.items()) if not v]
    return _ok(all(versions.values()), ", ".join(f"{r}: WORKFLOW_VERSION={v}" for r, v in sorted(versions.items())),
               f"WORKFLOW_VERSION missing for {_names(unset)}" + "".join(
                   f"; {r}: WORKFLOW_VERSION={v}" for r, v in sorted(versions.items()) if v))


def models_match(f: Facts) -> Verdict:
    if f.consistency is None:
        return FAIL, f.consistency_error or "the workflow/manifest check did not run"
    warnings = tuple(f.consistency.warnings)
    if not f.consistency.ok:
        return FAIL, "; ".join(f.consistency.errors[:3])
    if warnings and _own_role(f) == "prod" and f.target == "cloud":
        # models.yaml: an unpinned file is baked unverified and "must be pinned from the source before a PROD
        # release"; the build cannot tell it from another file of the same name. A local PROD runs the local
        # image's stand-in files, which nothing downloads: there it is named, not a failure.
        return FAIL, (f"{len(warnings)} model(s) unpinned in images/worker/models.yaml, which PROD must not run: "
                      + "; ".join(warnings[:3]))
    return PASS, ("every model each workflow names is in models.yaml under its loader's directory"
                  + (f"; {len(warnings)} warning(s): " + "; ".join(warnings[:3]) if warnings else ""))


def no_network_volume(f: Facts) -> Verdict:
    prod, err = f.specs.get("prod"), f.spec_errors.get("prod", "")
    if "network_volume_id" in err or "network volume" in err:
        return FAIL, err
    if prod is None:
        return FAIL, f"PROD spec not loaded: {err}"
    if prod.endpoint.network_volume_id:
        return FAIL, f"PROD's endpoint attaches network volume {prod.endpoint.network_volume_id}"
    docker = [p for p in f.dockerfile_problems or () if "volume" in p.lower() or "VOLUME" in p]
    return _ok(not docker, "PROD has no network volume; the Dockerfile bakes models and declares no VOLUME",
               "; ".join(docker))


def cold_start_ok(f: Facts) -> Verdict:
    j = f.jobs
    if j is None:
        return FAIL, f.jobs_error or "no job facts"
    image = _own_image(f)
    if image is None:  # nothing pinned to scope by: every job the stack ran
        if not j.total:
            return NA, "no jobs yet"
        return _ok(j.first_job_status == "completed" and not j.cold_start_failures,
                   "the first job (a cold start) completed; no job failed for an engine that was not ready "
                   "(no pinned image: every job)",
                   f"first job {j.first_job_status}; {j.cold_start_failures} job(s) failed while the engine was "
                   "starting (no pinned image: every job)")
    # The pinned image's first job is its first cold start, as the other job lines judge this image's jobs: an
    # older image's failed start neither keeps a clean one red nor does its clean start vouch for this one.
    first = j.first_job_by_image.get(image)
    serving = _serving(f, image)
    if first is None:
        return NA, f"no job has run on {serving} (the pinned image) yet: its first job will be its cold start"
    cold = j.cold_start_by_image.get(image) or {}
    problems = []
    if first.get("status") in ("queued", "in_progress"):
        problems.append(f"the first job of {serving} (a cold start), {first.get('id')}, has not ended "
                        f"({first.get('status')}): the cold start is judged once it has")
    elif first.get("status") != "completed":
        problems.append(f"the first job of {serving} (a cold start), {first.get('id')}, ended "
                        f"{first.get('status')}: {_said(first.get('error'))}")
    if cold.get("n"):
        problems.append(f"{cold['n']} job(s) of {serving} failed while the engine was starting (newest "
                        f"{cold.get('id')}: {_said(cold.get('error'))})")
    if problems and (cold.get("n") or first.get("status") not in ("queued", "in_progress")):
        problems.append("the worker's log of the job says why; COMFY_READY_TIMEOUT_S bounds how long a worker "
                        "waits for ComfyUI to start")
    return _ok(not problems, f"the first job of {serving} ({first.get('id')}, a cold start) completed; no job of "
                             "it failed for an engine that was not ready", "; ".join(problems))


def _said(error: Any) -> str:
    return repr(str(error)[:200]) if error else "no error recorded"


# -- API / queue ---------------------------------------------------------------------------------

def queue_create(f: Facts) -> Verdict:
    j = f.jobs
    if j is None:
        return FAIL, f.jobs_error or "no job facts"
    if not j.total:
        return FAIL, "no job was ever created on this stack"
    last = j.last_submission
    # A create RunPod refused or could not be reached for answers 502/503 and keeps a failed job: an old job that
    # ran says nothing of whether a create reaches RunPod now (its tag is null: no image's line judges it).
    if last is not None and last.get("refused"):
        return FAIL, (f"the newest job, {last.get('id')} (created {last.get('created_at')}), never reached RunPod: "
                      f"{str(last.get('error'))[:300]}; {j.submit_failures} of {j.total} jobs were never taken. "
                      "fix what RunPod answered (the stack's endpoint, its RunPod API key, RunPod's status), then "
                      "create a job again")
    refused = f"; {j.submit_failures} never reached RunPod, none since" if j.submit_failures else ""
    return PASS, f"{j.total} jobs created through POST /api/queue/create ({_counts(j.by_status)}){refused}"


def webhook_receives(f: Facts) -> Verdict:
    j = f.jobs
    if j is None:
        return FAIL, f.jobs_error or "no job facts"
    done, failed = j.applied_webhooks.get("COMPLETED", 0), j.applied_webhooks.get("FAILED", 0)
    return _ok(done > 0, f"webhooks applied: {done} COMPLETED, {failed} FAILED",
               "no COMPLETED webhook was ever applied")


def no_polling(f: Facts) -> Verdict:
    more = f"; and {len(f.polling) - 3} more" if len(f.polling) > 3 else ""
    return _ok(not f.polling, "static scan of service/: no loop, timer or cron handler calls RunPod /status "
               "(nor /stream)", "; ".join(f.polling[:3]) + more)


def status_after_webhook(f: Facts) -> Verdict:
    j = f.jobs
    if j is None:
        return FAIL, f.jobs_error or "no job facts"
    if j.completed_without_delivery:
        return FAIL, f"{j.completed_without_delivery} completed job(s) have no applied COMPLETED delivery"
    if f.live is None:
        return (PASS, f"every completed job was completed by an applied delivery ({f.live_reason})") \
            if j.by_status.get("completed") else (NA, "no completed job yet")
    return _ok(f.live.status_ok, f.live.status_detail, f.live.status_detail)


def webhook_idempotent(f: Facts) -> Verdict:
    if f.live is None:
        return NA, f"needs the live stack: {f.live_reason}"
    if f.live.replay_ok is None:
        return NA, f.live.replay_detail
    return _ok(f.live.replay_ok, f.live.replay_detail, f.live.replay_detail)


# -- storage -------------------------------------------------------------------------------------

def _golden_checks(f: Facts, suffix: str) -> tuple[int, list[str]]:
    checks = [c for case in (f.golden or {}).get("cases") or [] for c in case.get("checks") or []
              if str(c.get("name", "")).endswith(suffix)]
    return len(checks), [f"{c['name']}: {c.get('detail')}" for c in checks if not c.get("passed")]


def result_via_api(f: Facts) -> Verdict:
    if f.live is not None:
        return _ok(f.live.result_ok, f.live.result_detail, f.live.result_detail)
    n, bad = _golden_checks(f, ".content_type")
    if not n:
        return FAIL, f"no live stack ({f.live_reason}) and no golden result downloads to show"
    return _ok(not bad, f"golden run downloaded {n} result(s) through /api/result/:key", "; ".join(bad[:3]))


def size_and_type_checked(f: Facts) -> Verdict:
    j = f.jobs
    if j is None:
        return FAIL, f.jobs_error or "no job facts"
    n_size, bad_size = _golden_checks(f, ".size")
    n_type, bad_type = _golden_checks(f, ".content_type")
    image = _own_image(f)
    # The pinned image's results, as the golden report is that image's: an image replaced since neither keeps
    # this red nor passes it.
    stored = j.bad_results_by_image.get(image, ()) if image else j.bad_results
    completed = (j.by_image_status.get(image, {}) if image else j.by_status).get("completed")
    scope = f"of {_serving(f, image)}" if image else "(no pinned image: every job's)"
    bad = list(stored) + bad_size + bad_type
    if not (n_size or completed):
        return NA, f"no results {scope} yet"
    return _ok(not bad, f"every stored result {scope} is image/* with bytes > 0; golden checked {n_size} sizes "
                        f"and {n_type} content types", "; ".join(bad[:3]))


# -- observability -------------------------------------------------------------------------------

def logs_schema(f: Facts) -> Verdict:
    lg = f.logs
    if lg is None:
        return FAIL, f.logs_error or "logs not read"
    if lg.lines <= lg.also_lines:  # the release commands' log alone says nothing of the stack's components
        return FAIL, "no log lines found under the stack's logs dir"
    # Past the cap lines are only counted: the evidence says how many were judged, never more.
    unjudged = (f"; {lg.unjudged} more lines past the first {lg.lines} were not judged" if lg.unjudged
                else "") + lg.judged_words()
    with_also = f" (the stack's logs dir and {', '.join(lg.also_files)})" if lg.also_files else ""
    return _ok(not lg.invalid_count, f"{lg.lines} lines in {lg.files} files{with_also} valid against "
                                     "logging-schema-v1" + unjudged,
               f"{lg.invalid_count} invalid lines: " + "; ".join(lg.invalid) + unjudged)


def trace_fields(f: Facts) -> Verdict:
    lg = f.logs
    if lg is None:
        return FAIL, f.logs_error or "logs not read"
    if not lg.job_ids:
        return NA, "no job-scoped log lines yet"
    problems = []
    if lg.jobs_missing_trace:
        problems.append(f"lines without trace_id for jobs {_names(lg.jobs_missing_trace)}")
    if lg.jobs_without_context:
        problems.append("jobs never logged with trace_id+workflow_version+worker_image_tag: "
                        + _names(lg.jobs_without_context))
    return _ok(not problems, f"{lg.job_ids} jobs logged with trace_id, workflow_version and worker_image_tag",
               "; ".join(problems))


def durations_recorded(f: Facts) -> Verdict:
    j = f.jobs
    if j is None:
        return FAIL, f.jobs_error or "no job facts"
    if not j.metrics_completed:
        return NA, "no completed job_metrics rows yet"
    return _ok(j.metrics_with_durations > 0,
               f"{j.metrics_with_durations} of {j.metrics_completed} completed jobs have queue and run durations",
               "no completed job has runpod_queue_duration_ms/runpod_run_duration_ms")


def percentiles(f: Facts) -> Verdict:
    if f.metrics is None:
        return FAIL, f.metrics_error or "metrics not computed"
    e2e, count = f.metrics["overall"]["e2e_ms"], f.metrics["overall"]["count"]
    ok = count > 0 and None not in (e2e["p50"], e2e["p95"], e2e["p99"])
    # A row without an end-to-end time (a job settled by a recovery, or whose clock stepped) is in no percentile.
    return _ok(ok, f"job_metrics: {count} rows; e2e P50/P95/P99 = {e2e['p50']}/{e2e['p95']}/{e2e['p99']} ms (SQL)",
               f"P50/P95/P99 not computable: none of the {count} job_metrics rows has an end-to-end time (a job "
               "settled by `goldgate recover` or from its stored outcome has none): run jobs whose webhook comes"
               if count else "P50/P95/P99 not computable: no rows")


def cost_estimate(f: Facts) -> Verdict:
    j = f.jobs
    if j is None:
        return FAIL, f.jobs_error or "no job facts"
    if not j.metrics_completed:
        return NA, "no completed job_metrics rows yet"
    priced = j.metrics_completed - j.metrics_unmeasured
    if not priced and not j.metrics_missing_cost:
        return NA, f"no completed job with a run time yet ({j.metrics_unmeasured} without one: nothing to price)"
    unmeasured = (f"; {j.metrics_unmeasured} without a run time (recovered from the result store, or RunPod gave "
                  "no executionTime) have none, by design" if j.metrics_unmeasured else "")
    return _ok(not j.metrics_missing_cost, f"all {priced} completed jobs with a run time carry cost_estimate_usd"
               + unmeasured,
               f"{j.metrics_missing_cost} completed jobs with a run time lack cost_estimate_usd (newest: "
               f"{', '.join(j.missing_cost_jobs)}): check the stack's GPU type and prices_per_gpu_second")


# -- golden tests --------------------------------------------------------------------------------

def golden_against_staging(f: Facts) -> Verdict:
    if f.golden is None:
        return FAIL, f.golden_error or "no golden report"
    image = f.images.get("staging")
    stack_ok = f.golden.get("stack") == "staging" or (f.specs.get("staging") and
                                                       f.golden.get("stack") == f.specs["staging"].name)
    staging = f"STAGING runs {image}" if image else "STAGING has no pinned image (`goldgate deploy staging`)"
    return _ok(bool(stack_ok) and f.golden.get("image") == image,
               f"golden suite ran against STAGING ({f.golden.get('image')}) via `goldgate golden staging`",
               f"the report is for stack {f.golden.get('stack')!r} image {f.golden.get('image') or '(none named)'}, "
               f"{staging}")


def golden_report_latest(f: Facts) -> Verdict:
    if f.golden is None:
        return FAIL, f.golden_error or "no golden report"
    staging = f.specs.get("staging")
    max_age = staging.thresholds.report_max_age_s if staging else 86_400
    # The promotion gate judges the report with the same words (goldgate/release/gate.py).
    fresh, evidence = report_freshness(f.golden.get("finished_at"), f.now, max_age, "`goldgate golden staging`",
                                       subject=str(f.golden_path))
    return (PASS if fresh else FAIL), evidence


def _golden_of_another_image(f: Facts) -> str | None:
    """Why the report is not evidence for STAGING's pinned image, or None when it is."""
    image = f.images.get("staging")
    if image and f.golden is not None and f.golden.get("image") == image:
        return None
    named = (f.golden or {}).get("image") or "(none named)"
    runs = f"STAGING runs {image}" if image else "STAGING has no pinned image"
    return f"{f.golden_path or 'the golden report'} is for image {str(named)[:200]}, {runs}: run `goldgate golden staging`"


def golden_latency(f: Facts) -> Verdict:
    if f.golden is None:
        return FAIL, f.golden_error or "no golden report"
    other = _golden_of_another_image(f)
    if other:
        return FAIL, other
    staging = f.specs.get("staging")
    if staging is None:
        return FAIL, "STAGING spec not loaded: no thresholds"
    t = staging.thresholds
    mean = (f.golden.get("latency_s") or {}).get("mean")
    slow = [c.get("id") for c in f.golden.get("cases") or []
            if isinstance(c.get("latency_s"), int | float) and c["latency_s"] > t.golden_case_latency_s]
    # bool is an int to Python: `"mean": true` is no latency, and would read as 1 s.
    ok = isinstance(mean, int | float) and not isinstance(mean, bool) and mean <= t.golden_mean_latency_s \
        and not slow
    said = (f"mean {mean} s" if isinstance(mean, int | float) and not isinstance(mean, bool) else
            "no mean latency (no case's job reached a final status)" if mean is None else
            f"the report's mean latency ({str(mean)[:40]}) is not a number of seconds")
    return _ok(ok, f"{said} <= {t.golden_mean_latency_s:g} s; every case <= {t.golden_case_latency_s:g} s",
               f"{said} (max {t.golden_mean_latency_s:g} s)"
               + (f"; cases over {t.golden_case_latency_s:g} s: {_names(slow)}" if slow else ""))


# -- release readiness ---------------------------------------------------------------------------

def pipeline_complete(f: Facts) -> Verdict:
    from goldgate.release.history import interrupted

    if f.ledger is None:
        return FAIL, f.ledger_error or "no ledger"
    promoted = _entries(f, "promotion", phase="outcome", outcome="promoted")
    if not promoted:
        return FAIL, "no promotion has completed yet: build -> deploy staging -> golden -> promote"
    image = promoted[-1].get("image")
    steps = {"build": _entries(f, "build", image=image), "deploy staging": _entries(f, "deploy", stack="staging",
                                                                                   image=image),
             "golden staging": _suite_passed_on_staging(f, image=image),
             "promotion": _entries(f, "promotion", phase="outcome", image=image, outcome="promoted")}
    missing = [k for k, v in steps.items() if not v]
    if "golden staging" in missing:   # a passing `--case` or `--smoke` run of it may stand in the ledger
        missing[missing.index("golden staging")] = (f"golden staging (a passing full run: "
                                                    f"{_not_the_suite(f, image=image)})")
    if "deploy staging" in missing and image and f.images.get("staging") == image:
        # STAGING still runs it: a deploy cut short (completed by `goldgate up`) recorded none; a deploy of it does.
        missing[missing.index("deploy staging")] = (f"deploy staging (STAGING runs it with no deploy recorded: "
                                                    f"{_deploy_staging(f, image)} records one)")
    stuck = interrupted(list(f.ledger))
    if stuck:
        missing.append(f"interrupted {stuck[0].kind} #{stuck[0].intent_seq} (the next `goldgate promote` or `goldgate rollback` reconciles it first)")
    return _ok(not missing and bool(image), f"{image}: build -> deploy STAGING -> golden -> promoted",
               f"for the last promoted release {image}: missing {', '.join(missing)}")


def error_rate_ok(f: Facts) -> Verdict:
    if f.metrics is None:
        return FAIL, f.metrics_error or "metrics not computed"
    spec = f.specs.get("staging") if f.stack not in {s.name for s in f.specs.values()} else next(
        s for s in f.specs.values() if s.name == f.stack)
    limit = spec.thresholds.error_rate if spec else 0.05
    image = _own_image(f)
    forgotten = 0
    if image is None:  # nothing pinned to scope by: every job the stack ran
        group, window = f.metrics["overall"], "all jobs (no pinned image to judge by)"
    elif f.jobs is not None and image in f.jobs.windows:
        # Its jobs since the change that put it on the stack, as the gate counts STAGING's since its deploy: the
        # jobs it failed on this stack before a recovery put it back are not the release it serves now.
        counts = f.jobs.metrics_by_image.get(image) or {}
        if not counts.get("count"):
            return NA, f"no job has run on {_serving(f, image)} (the pinned image) yet"
        group = {"count": counts["count"], "error_rate": counts.get("errors", 0) / counts["count"]}
        window = f"jobs of {_serving(f, image)} (its jobs before that and earlier images not judged)"
        forgotten = counts.get("forgotten", 0)
    else:
        # The gate judges the image it promotes; a release rolled back or replaced stays out of this one's rate.
        group = next((g for g in f.metrics.get("by_worker_image_tag") or () if g.get("worker_image_tag") == image),
                     None)
        if group is None:
            return NA, f"no job has run on {image} (the pinned image) yet"
        window = f"jobs of {image} (first seen {group.get('first_seen') or '-'}; earlier images not judged)"
    rate = group["error_rate"]
    if rate is None:
        return NA, "no jobs yet"
    way = f"; {_forgotten_way_out(f, image, forgotten)}" if forgotten and image else ""
    return _ok(rate <= limit, f"error rate {rate:.2%} <= {limit:.2%} over {group['count']} {window}",
               f"error rate {rate:.2%} exceeds {limit:.2%} over {group['count']} {window}{way}")


def _forgotten_way_out(f: Facts, image: str, forgotten: int) -> str:
    """One sentence: the jobs RunPod forgot across a host restart (recovered failed, their tag kept by design) count
    against the image until a new window opens; how to open one on this stack."""
    cloud = " --target cloud" if f.target == "cloud" else ""
    if _own_role(f) == "prod":
        opens = (f"a promotion of the image PROD runs opens a new window: `goldgate promote{cloud} --image {image}` "
                 "(the gate lets it through while STAGING runs it with a passing golden report)")
    else:
        opens = (f"a deploy of the same image opens a new window: `goldgate deploy {f.stack}{cloud} --image {image}`, "
                 f"then `goldgate golden {f.stack}{cloud}`")
    return (f"{forgotten} of the failed jobs were recovered as forgotten by RunPod (\"RunPod has no record of job "
            f"...\", as a restart of a local stack's host leaves its jobs in flight): if that, not the image, failed "
            f"them, {opens}")


def rollback_smoke(f: Facts) -> Verdict:
    outcomes = _entries(f, "rollback", phase="outcome")
    if not outcomes:
        return NA, "no rollback performed yet (the promotion's automatic rollback or `goldgate rollback`)"
    last = outcomes[-1]
    return _ok(last.get("outcome") == "rolled_back" and last.get("smoke_passed"),
               f"last rollback to {last.get('image')} passed its smoke test (ledger #{last.seq})",
               f"last rollback ({last.get('image')}) ended {last.get('outcome')}: "
               f"{last.get('error') or 'no error recorded'} (ledger #{last.seq})")


def _drill_command(f: Facts) -> str:
    # The cloud's evidence is a drill of D1: a plain `goldgate dr-drill` drills the local stack's SQLite instead.
    extra = " --target cloud --database-id <uuid>" if f.target == "cloud" else ""
    return f"`goldgate dr-drill {f.stack}{extra}`"


def _drill_max_age(f: Facts) -> tuple[int, str]:
    """How old the last drill may be, and what it is in words. Only cloud PROD's drill is a backup of production
    data (the daily one of the RPO table); a STAGING drill on the cloud is a rehearsal, as a local one is."""
    role = _own_role(f)
    if f.target == "cloud" and role == "prod":
        return DRILL_MAX_AGE_S["cloud"], "a cloud PROD drill (D1's daily backup)"
    return DRILL_MAX_AGE_S["local"], f"a {f.target}{f' {role.upper()}' if role else ''} drill (a weekly rehearsal)"


def dr_drill(f: Facts) -> Verdict:
    if f.drill is None:
        return FAIL, f.drill_error or f"no DR drill recorded; run {_drill_command(f)}"
    age = age_s(f.drill.get("finished_at"), f.now)
    if f.drill.get("passed") is not True:  # only a drill writes true; "false" (a string) is truthy
        return FAIL, (f"the last DR drill failed: {f.drill.get('error')}" if f.drill.get("passed") is False else
                      f"the last DR drill record says passed={str(f.drill.get('passed'))[:40]!r}, not true: it is not "
                      f"evidence; run {_drill_command(f)}")
    if age is None:
        return FAIL, (f"the last DR drill record has no readable finish time (finished_at "
                      f"{str(f.drill.get('finished_at'))[:64]!r}, expected RFC 3339 with a zone): it is not "
                      f"evidence; run {_drill_command(f)}")
    if age < -CLOCK_SKEW_S:
        return FAIL, (f"the last DR drill record says it finished at {f.drill.get('finished_at')}, {-age / 3600:.1f} h "
                      f"in the future (now {f.now.isoformat(timespec='seconds')}): a record from the future is not "
                      f"evidence; check this machine's clock and the record, then run {_drill_command(f)}")
    max_age, kind = _drill_max_age(f)
    if age > max_age:
        return FAIL, (f"the last passing DR drill finished {age / 3600:.1f} h ago, more than the {max_age // 3600} h "
                      f"docs/D1_DISASTER_RECOVERY.md allows for {kind}; run {_drill_command(f)}")
    rto = f.drill.get("rto_s")
    if not isinstance(rto, int | float) or isinstance(rto, bool):
        return FAIL, (f"the last DR drill record has no measured RTO (rto_s {str(rto)[:40]!r}): it does not show the "
                      f"{RTO_TARGET_S // 60}-minute target is met; run {_drill_command(f)}")
    if rto > RTO_TARGET_S:
        return FAIL, (f"the last DR drill restored in {rto:.0f} s, over the RTO target of {RTO_TARGET_S // 60} "
                      f"minutes (docs/D1_DISASTER_RECOVERY.md): make the restore faster or revise the target, then "
                      f"run {_drill_command(f)}")
    return PASS, (f"DR drill passed {max(age, 0.0) / 3600:.1f} h ago (max {max_age // 3600} h): backup "
                  f"{_seconds(f.drill.get('backup_s'))}, RTO {_seconds(rto)} (target {RTO_TARGET_S} s), RPO "
                  f"{_seconds(f.drill.get('rpo_s'))}")


# -- database upkeep (goldgate's own lines) -----------------------------------------------------------

def db_migrated(f: Facts) -> Verdict:
    m = f.migrations
    if m is None:
        return FAIL, f.migrations_error or "the database's d1_migrations was not read"
    if m.unknown:
        return FAIL, (f"the database has migrations this checkout does not ({', '.join(m.unknown)}): a newer goldgate "
                      "migrated it; update this checkout before judging or deploying the stack")
    if m.missing:
        return FAIL, f"migrations not applied: {', '.join(m.missing)}; {_migrate(f.stack, f.target, m)}"
    behind = [f"{name}'s running host serves a database without {', '.join(p.missing)}, so `goldgate release` "
              f"refuses to start; {_migrate(name, f.target, p)}" for name, p in sorted(f.peer_migrations.items())
              if p.missing]
    return _ok(not behind, f"d1_migrations holds every migration of this checkout, up to {m.newest}",
               "; ".join(behind))


def _migrate(stack: str, target: str, m: MigrationFacts) -> str:
    """The one command that applies the missing migrations (docs/RUNBOOK.md, "After upgrading goldgate")."""
    if target == "cloud":
        return f"`pulumi up --stack {stack}` applies them"
    if m.host_running:  # `goldgate up` refuses a stack whose host is up: only a restart migrates
        return (f"restart the host an older goldgate started on it: `goldgate down {stack} && goldgate up {stack}` "
                "applies them")
    return f"`goldgate up {stack}` applies them"


def _own_spec(f: Facts) -> Any:
    return next((s for s in f.specs.values() if s.name == f.stack), None)


def _last_prune(f: Facts) -> str | None:
    """The last recorded prune in words, or None when there is none to read."""
    p = f.prune
    if p is None:
        return None
    age = age_s(p.get("finished_at"), f.now)
    when = f"{max(age, 0.0) / 86_400:.1f} days ago" if age is not None else f"at {str(p.get('finished_at'))[:64]!r}"
    deleted = p.get("deleted")
    jobs = deleted.get("jobs") if isinstance(deleted, dict) else None
    count = f"{jobs} jobs" if isinstance(jobs, int) and not isinstance(jobs, bool) else "jobs (how many: not recorded)"
    return f"the last `goldgate prune` (--keep-days {p.get('keep_days')}) deleted {count} {when}"


def _deployed_retention(f: Facts, kept: RetentionSpec) -> Verdict:
    """A declared retention counts once Cloudflare runs its Cron Trigger: the file alone says what the next
    `pulumi up` would deploy, not what prunes D1 now."""
    declared = f"stacks/Pulumi.{f.stack}.yaml declares database.retention (Cron Trigger {kept.cron} UTC)"
    w = f.worker_crons
    if w is None:
        return FAIL, f"{declared}, but what the API Worker runs could not be read: {f.worker_crons_error or 'not read'}"
    # `pulumi up` deploys exactly the one declared. Compared without case: Cloudflare may echo a day or month
    # name (MON, mon) in another case than was sent (unverified), which is no drift.
    if [c.lower() for c in w.crons] != [kept.cron.lower()]:
        runs = f"runs Cron Trigger(s) {', '.join(w.crons)}" if w.crons else "has no Cron Trigger"
        return FAIL, (f"{declared}, but API Worker {w.script} {runs}, so D1 is not pruned as declared; "
                      f"`pulumi up --stack {f.stack}` deploys it")
    # What the scheduled run prunes by comes from the Worker's RETENTION_* settings, deployed by the same `pulumi up`
    # (a Worker without RETENTION_KEEP_DAYS prunes nothing): the file edited since then says nothing of them.
    wanted = {"RETENTION_KEEP_DAYS": str(kept.keep_days)}
    if kept.metrics_keep_days is not None:
        wanted["RETENTION_METRICS_KEEP_DAYS"] = str(kept.metrics_keep_days)
    if dict(w.retention) != wanted:
        return FAIL, (f"{declared} with {_settings(wanted)}, but API Worker {w.script} runs with "
                      f"{_settings(w.retention) or 'no RETENTION_* setting'}, so D1 is not pruned as declared; "
                      f"`pulumi up --stack {f.stack}` deploys it")
    metrics = (f", job_metrics over {kept.metrics_keep_days} days" if kept.metrics_keep_days is not None
               else ", job_metrics kept")
    return PASS, (f"API Worker {w.script} runs the Cron Trigger ({kept.cron} UTC) stacks/Pulumi.{f.stack}.yaml "
                  f"declares (read from Cloudflare): jobs finished over {kept.keep_days} days ago are pruned{metrics}")


def _settings(values: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items()))


def d1_retention(f: Facts) -> Verdict:
    if f.target != "cloud":
        last = _last_prune(f) or f.prune_error or f"no `goldgate prune {f.stack}` recorded"
        return NA, f"local SQLite has no 10 GB cap as D1 has: informational only; {last}"
    spec = _own_spec(f)
    kept = spec.database.retention if spec is not None else None
    if kept is not None:
        return _deployed_retention(f, kept)
    declare = (f"set goldgate:spec.database.retention in stacks/Pulumi.{f.stack}.yaml (a Cron Trigger) and "
               f"`pulumi up --stack {f.stack}`, or run `goldgate prune "
               f"{f.stack} --keep-days N --target cloud --database-id <uuid>` regularly")
    if f.prune is None:
        return FAIL, (f"{f.prune_error}; {declare}" if f.prune_error else
                      f"D1 grows until its 10 GB cap refuses writes: no retention declared and no prune recorded; "
                      f"{declare}")
    age = age_s(f.prune.get("finished_at"), f.now)
    fresh = age is not None and -CLOCK_SKEW_S <= age <= PRUNE_MAX_AGE_S
    return _ok(fresh, f"no retention declared; {_last_prune(f)}",
               f"no retention declared and {_last_prune(f)}, not within {PRUNE_MAX_AGE_S // 86_400} days: {declare}")


def database_room(f: Facts) -> Verdict:
    """Whether the database can keep taking writes: seen before the first `database.full`, not at it."""
    room = f.room
    if room is None:  # a read that failed says why; it judges nothing, so it fails nothing
        return NA, f"the database's size was not read: {f.room_error or 'no reading'}"
    return _d1_room(f, room) if f.target == "cloud" else _disk_room(f, room)


_FULL = 'docs/RUNBOOK.md, "The database is full"'


def _d1_room(f: Facts, room: DatabaseRoom) -> Verdict:
    cap = room.cap_bytes or MAX_DATABASE_BYTES
    share = room.size_bytes / cap
    said = (f"{room.where} holds {_decimal_size(room.size_bytes)} of D1's {_decimal_size(cap)} cap "
            f"({share:.1%})")
    if share < D1_WARN_SHARE:
        return PASS, said
    uuid = room.database_id or "<uuid>"
    days = _prune_days(f)
    prune = (f"`goldgate prune {f.stack} --keep-days {days} --target cloud --database-id {uuid}` deletes the "
             f"finished jobs older than {days} days")
    keep = _keep_fewer(f, f"`pulumi up --stack {f.stack}`")
    if share >= D1_FAIL_SHARE:
        return FAIL, (f"{said}, past {D1_FAIL_SHARE:.0%}: D1 refuses every write at the cap (503 "
                      f"storage_full); {prune}; {keep} ({_FULL})")
    return WARN, (f"{said}, past {D1_WARN_SHARE:.0%}: D1 refuses every write at the cap; {prune}; "
                  f"{keep} ({_FULL})")


def _disk_room(f: Facts, room: DatabaseRoom) -> Verdict:
    free, total = room.free_bytes, room.total_bytes
    if free is None or total is None or total <= 0 or not 0 <= free <= total:
        return NA, (f"the filesystem holding {room.where} reported {free} bytes free of {total}: no "
                    "figure to judge by; `df -h` on it says how full it is")
    own = f"{_binary_size(room.size_bytes)} with its WAL" if room.size_bytes else "not created yet"
    said = (f"{_binary_size(free)} free of {_binary_size(total)} ({free / total:.1%}) on the "
            f"filesystem holding {room.where} ({own})")
    low = free < DISK_WARN_BYTES or (free < DISK_WARN_SHARE * total and free < MAX_DATABASE_BYTES)
    if not low:
        return PASS, said
    days = _prune_days(f)
    act = (f"free space on that disk first (`du -sh {Path(room.where).parent}/*`: old "
           f"logs/worker-*.log may go), then `goldgate prune {f.stack} --keep-days {days}` deletes the "
           f"finished jobs older than {days} days ({_FULL})")
    if free < DISK_FAIL_BYTES:
        return FAIL, (f"{said}, under {_binary_size(DISK_FAIL_BYTES)}: SQLite refuses every write "
                      f"when the disk fills (503 storage_full); {act}")
    why = (f"under {_binary_size(DISK_WARN_BYTES)}" if free < DISK_WARN_BYTES
           else f"under {DISK_WARN_SHARE:.0%} of the disk")
    return WARN, f"{said}, {why}: SQLite refuses every write when the disk fills; {act}"


def _prune_days(f: Facts) -> int:
    """The --keep-days of the prune a room line suggests: a month, or the stack's result ttl when longer
    (`goldgate prune` refuses fewer days than storage.result_ttl_days: it would delete the rows of
    results R2 still holds)."""
    spec = _own_spec(f)
    return max(PRUNE_SUGGESTED_DAYS, spec.storage.result_ttl_days if spec is not None else 0)


def _keep_fewer(f: Facts, up: str) -> str:
    """How to keep D1 down for good: declare a retention, or keep fewer days than the declared one, each
    only as far as the loader allows (keep_days down to storage.result_ttl_days, metrics_keep_days down to
    keep_days)."""
    spec = _own_spec(f)
    kept = spec.database.retention if spec is not None else None
    if spec is None or kept is None:
        return f"set database.retention in stacks/Pulumi.{f.stack}.yaml and {up} to keep it down"
    ttl = spec.storage.result_ttl_days
    ways = []
    if kept.keep_days > ttl:
        ways.append(f"lower keep_days (to no fewer than storage.result_ttl_days, {ttl})")
    if kept.metrics_keep_days is None:
        ways.append("set metrics_keep_days")
    elif kept.metrics_keep_days > kept.keep_days:
        ways.append("lower metrics_keep_days (to no fewer than keep_days)")
    if kept.keep_days <= ttl:
        ways.append("lower storage.result_ttl_days and keep_days together")
    return f"database.retention keeps {kept.keep_days} days: {' or '.join(ways)}, and {up}"


def _decimal_size(n: int) -> str:
    """Bytes in GB or MB of 1000s, as D1 states its cap (10 GB)."""
    return f"{n / 1000 ** 3:.2f} GB" if n >= 1000 ** 3 else f"{n / 1000 ** 2:.1f} MB"


def _binary_size(n: int) -> str:
    """Bytes in GiB or MiB, as `df -h` counts a disk."""
    return f"{n / 1024 ** 3:.1f} GiB" if n >= 1024 ** 3 else f"{n / 1024 ** 2:.0f} MiB"


# -- exit criteria -------------------------------------------------------------------------------

def all_jobs_have_images(f: Facts) -> Verdict:
    j = f.jobs
    if j is None:
        return FAIL, f.jobs_error or "no job facts"
    cases = (f.golden or {}).get("cases") or []
    cases_without = [c.get("id") for c in cases if not c.get("images") and not c.get("passed")]
    image = _own_image(f)
    # The pinned image's jobs: an image rolled back or replaced is not what this stack serves now, and a job
    # RunPod never took (no image) is the API's failure, judged by the error rate's gate, not an image's.
    counts = j.by_image_status.get(image, {}) if image else j.by_status
    scope = f"of {_serving(f, image)}" if image else "(no pinned image: every job)"
    done = counts.get("completed", 0)
    unfinished = {s: counts.get(s, 0) for s in ("failed", "timed_out") if counts.get(s)}
    if unfinished:
        forgotten = (j.metrics_by_image.get(image) or {}).get("forgotten", 0) if image else 0
        return FAIL, (f"{sum(unfinished.values())} of {sum(counts.values())} jobs {scope} did not complete ("
                      + ", ".join(f"{n} {s}" for s, n in unfinished.items()) + "): each one's `job.finished` "
                      "warning line in the stack's service log names the job and says why (docs/LOG_EVENTS.md; "
                      "`GET /api/status/<job_id>` gives its `error`)"
                      + (f"; {_forgotten_way_out(f, image, forgotten)}" if image and forgotten else ""))
    if image and not sum(counts.values()):
        # As cold_start: right after a deploy (a same-image redeploy too) no job of its window has run yet.
        cloud = " --target cloud" if f.target == "cloud" else ""
        return NA, (f"no job has run on {_serving(f, image)} (the pinned image) yet: run "
                    f"`goldgate golden {f.stack}{cloud}`")
    if not done:
        return FAIL, f"no completed job {scope}"
    without = j.completed_without_images_by_image.get(image, 0) if image else j.completed_without_images
    return _ok(not without and not cases_without,
               f"{done} jobs {scope} completed, each with result images; golden cases all produced images",
               "; ".join(([f"{without} completed jobs {scope} without images"] if without else [])
                         + ([f"golden cases without images: {_names(cases_without)}"] if cases_without else [])))


def mean_latency(f: Facts) -> Verdict:
    j = f.jobs
    if j is None:
        return FAIL, f.jobs_error or "no job facts"
    image = _own_image(f)
    # The pinned image's jobs, as the error rate: a slow release replaced since neither keeps this red nor an
    # earlier fast one hides a slow release now.
    mean_ms = j.mean_e2e_ms_by_image.get(image) if image else j.mean_e2e_ms
    scope = f"jobs of {_serving(f, image)}" if image else "all jobs (no pinned image to judge by)"
    if mean_ms is None:
        return NA, f"no completed {scope} with end-to-end time yet"
    mean_s = mean_ms / 1000
    return _ok(mean_s <= EXIT_MEAN_LATENCY_S, f"mean end-to-end {mean_s:.1f} s <= 360 s over completed {scope}",
               f"mean end-to-end {mean_s:.1f} s exceeds 6 minutes over completed {scope}")


def golden_all_pass(f: Facts) -> Verdict:
    if f.golden is None:
        return FAIL, f.golden_error or "no golden report"
    other = _golden_of_another_image(f)
    if other:
        return FAIL, other
    cases = f.golden.get("cases") or []
    failed = [c.get("id") for c in cases if c.get("passed") is not True]  # "false" (a string) is truthy
    failures = f.golden.get("failures")
    failures = [str(x) for x in failures] if isinstance(failures, list) else []
    more = f"; and {len(failures) - 2} more failures in the report" if len(failures) > 2 else ""
    subset = _report_not_the_suite(f)
    if subset and f.golden.get("passed") is True and cases and not failed:
        # Every case of the report passed, but a `--cases-dir <a subset>` run wrote it: the gate refuses it as well.
        return FAIL, f"all {len(cases)} cases of the report passed, but {subset}"
    return _ok(f.golden.get("passed") is True and bool(cases) and not failed, f"all {len(cases)} golden cases passed",
               (f"golden report failed: cases {_names(failed)}" if failed else
                "golden report failed" if cases else "golden report ran no case")
               + "".join(f"; {x}" for x in failures[:2]) + more)


# -- first aid -----------------------------------------------------------------------------------

def model_paths(f: Facts) -> Verdict:
    need = {"/comfyui/models", "/workspace/ComfyUI/models"}
    return _ok(need <= set(f.model_roots), f"the worker searches {', '.join(f.model_roots)} (MODEL_ROOTS default)",
               f"the worker's model roots ({_names(f.model_roots)}) miss {_names(sorted(need - set(f.model_roots)))}")


def image_has_models(f: Facts) -> Verdict:
    im = f.image_models
    if im is None:
        return FAIL, f.image_models_error or "the pinned image was not inspected"
    return _ok(not im.missing and im.checked > 0,
               f"preflight (`goldgate doctor`): {im.checked} UNET/CLIP/VAE/LoRA/checkpoint files baked in {im.image}",
               f"missing from {im.image}: {'; '.join(im.missing[:3])}")


def _preflight_command(f: Facts, image: str) -> str:
    # `goldgate doctor` reads only a local stack's image snapshot: a registry image is checked by running its own
    # preflight (docs/RUNBOOK.md, "No checkpoint models appear to be available", step 2).
    if f.target == "cloud":
        return f"`docker run --rm --entrypoint python {image} -m goldgate_worker.preflight`"
    return f"`goldgate doctor --stack {f.stack}`"


def startup_log(f: Facts) -> Verdict:
    lg = f.logs
    if lg is None:
        return FAIL, f.logs_error or "logs not read"
    image = _own_image(f)
    if image is None:
        return FAIL, "the stack pins no image: no worker's start-up to judge"
    failed_starts = lg.preflight_failed_by_image.get(image, 0)
    loaded = lg.models_loaded_by_image.get(image, 0)
    serving = _serving(f, image, logs=True, startup=True)
    if failed_starts:
        return FAIL, (f"{failed_starts} `preflight_failed` line(s) from workers of {_serving(f, image, logs=True)}: "
                      f"they exit without taking a job; {_preflight_command(f, image)} names the missing models")
    earlier = lg.models_loaded_before_by_image.get(image, 0)
    if not loaded and earlier:
        # The stack ran the image before the change the window counts from (unrecorded): that change kept its warm
        # workers, which confirmed the models when they started; none has started since.
        fresh = "" if f.target == "cloud" else (f"; `goldgate down {f.stack} && goldgate up {f.stack}` starts "
                                                  "fresh ones")
        return NA, (f"no worker of {serving} has started yet: the redeploy kept the warm workers that ran it before, "
                    f"whose {earlier} `models_loaded` line(s) confirmed its models{fresh}")
    return _ok(loaded > 0, f"{loaded} `models_loaded` start-up line(s) from workers of {serving}",
               f"no `models_loaded` line from a worker of {serving} ({lg.models_loaded} in all, other images' and "
               "earlier ones included): the preflight did not confirm the pinned image's models")


def custom_nodes_locked(f: Facts) -> Verdict:
    """Each custom node's Python dependencies reach the image hash-checked. An entry without `requirements:` installs
    the node's own requirements.txt unpinned: a compromised new upload of any of its dependencies runs in the worker.
    As an unpinned model (models_match), PROD on the cloud must not run it; elsewhere it is named, as a warning (a
    local stack's image runs no custom node's code: the ComfyUI emulator stands in for them)."""
    cn = f.custom_node_locks
    if cn.error:
        return FAIL, cn.error
    if not cn.unlocked:
        if not cn.locked and not cn.no_requirements:
            return PASS, f"{cn.path} declares no custom node"
        return PASS, (f"every custom node's dependencies are hash-locked: {len(cn.locked)} install a lock of "
                      f"images/worker/custom_nodes/ ({_names(cn.locked)}), {len(cn.no_requirements)} have none "
                      f"({_names(cn.no_requirements)})")
    described, command = cn.unlocked[0]
    words = (f"{len(cn.unlocked)} custom node(s) of {cn.path} install their own requirements.txt without pins or "
             f"hashes: {_names(d for d, _ in cn.unlocked)}; lock {described.split(' ', 1)[0]}: {command} (or "
             "`requirements: none` when it has no requirements.txt)")
    if _own_role(f) == "prod" and f.target == "cloud":
        return FAIL, f"{words}; PROD must not run dependencies no hash checked"
    return WARN, f"{words}; `goldgate checklist prod --target cloud` fails on it"


def rebuild_with_models(f: Facts) -> Verdict:
    if f.dockerfile_problems is None:
        return FAIL, f.consistency_error or "the Dockerfile was not read"
    return _ok(not f.dockerfile_problems, "the Dockerfile bakes every models.yaml entry (rebuild = `goldgate build`)",
               "; ".join(f.dockerfile_problems[:3]))


S1, S2, S3, S4 = "RunPod Worker (Staging + Prod)", "Workflow / Models", "API / Queue", "Storage (R2)"
S5, S6, S7, S8 = "Observability", "Golden Tests", "Release Readiness", "Exit Criteria"
S9 = 'Debug First Aid: "No checkpoint models appear to be available"'
S10 = "Database upkeep (goldgate)"
S11 = "Worker image supply chain (goldgate)"

SEED_CHECKS: tuple[Check, ...] = (
    Check("staging_separate", S1, "STAGING endpoint created and configured separatelyจาก PROD", staging_separate),
    Check("staging_image_pipeline", S1, "IMAGE tag สำหรับ STAGING ถูก deploy ผ่าน pipeline", staging_image_via_pipeline),
    Check("golden_before_promote", S1, "STAGING ผ่าน Golden Tests ทั้งหมดก่อน promote", golden_before_promote),
    Check("prod_same_digest", S1, "PROD รับการ promote จาก tag เดียวกัน (immutable)", prod_same_digest),
    Check("rollback_ready", S1, "Rollback พร้อมใช้งาน (pin tag เดิม)", rollback_ready),
    Check("workflow_version", S2, "Workflow version tag ระบุชัดใน env `WORKFLOW_VERSION`", workflow_version_set),
    Check("models_match", S2, "โมเดลครบและชื่อไฟล์ตรงกับ workflow", models_match),
    Check("no_network_volume", S2, "ไม่มีการพึ่ง Network Volume ใน production", no_network_volume),
    Check("cold_start", S2, "cold start ไม่ทำให้ workflow ล้มเหลว", cold_start_ok),
    Check("queue_create", S3, "POST `/api/queue/create` ส่งงานได้", queue_create),
    Check("webhook_receives", S3, "POST `/api/runpod/webhook` รับ COMPLETED/FAILED ได้", webhook_receives),
    Check("no_polling", S3, "ไม่มี automated polling ใน live flow (ใช้ manual recovery เท่านั้น)", no_polling),
    Check("status_completed", S3, "Status endpoint ตอบ completed เมื่อ webhook อัปเดต", status_after_webhook),
    Check("webhook_idempotent", S3, "Webhook idempotency ทำงานและ out-of-order ถูก ignore", webhook_idempotent),
    Check("result_via_api", S4, "Result upload สำเร็จและเรียกผ่าน `/api/result/:key`", result_via_api),
    Check("size_content_type", S4, "ตรวจขนาดไฟล์และ Content-Type", size_and_type_checked),
    Check("logs_schema_v1", S5, "Logging schema v1 ครบทุกจุด", logs_schema),
    Check("trace_fields", S5, "มี trace_id, workflow_version, worker_image_tag", trace_fields),
    Check("durations_recorded", S5, "runpod_queue_duration_ms/runpod_run_duration_ms ถูกบันทึก (ถ้ามี)",
          durations_recorded),
    Check("percentiles", S5, "Metrics ถูกบันทึกใน D1 (job_metrics) และคำนวณ P50/P95/P99 ได้", percentiles),
    Check("cost_estimate", S5, "มี cost_estimate_usd ต่อ job สำหรับการประเมินคร่าวๆ", cost_estimate),
    Check("golden_against_staging", S6, "รัน `scripts/golden-tests/run.mjs` กับ STAGING", golden_against_staging),
    Check("golden_report_latest", S6, "Report ล่าสุดอยู่ที่ `scripts/golden-tests/reports/latest.json`",
          golden_report_latest),
    Check("golden_latency", S6, "Latency <= threshold ที่กำหนด", golden_latency),
    Check("pipeline_complete", S7, "Pipeline deploy/promote ผ่านทุกขั้นตอน", pipeline_complete),
    Check("error_rate", S7, "ไม่มี error rate เกินเกณฑ์", error_rate_ok),
    Check("rollback_smoke", S7, "Rollback ผ่าน smoke test", rollback_smoke),
    Check("dr_drill", S7, "DR drill ผ่านตามเอกสาร `docs/D1_DISASTER_RECOVERY.md`", dr_drill),
    Check("all_jobs_images", S8, "ทุก job COMPLETED และได้ผลลัพธ์ภาพ", all_jobs_have_images),
    Check("mean_latency", S8, "Latency เฉลี่ย <= 6 นาที", mean_latency),
    Check("exit_no_network_volume", S8, "ไม่มี Network Volume ใน production", no_network_volume),
    Check("golden_all_pass", S8, "Golden Tests ผ่านครบทุกเคส", golden_all_pass),
    Check("model_paths", S9, "เช็ค path `/comfyui/models` และ `/workspace/ComfyUI/models`", model_paths),
    Check("image_models", S9, "ยืนยันไฟล์ UNET/CLIP/VAE/LoRA ครบตาม workflow", image_has_models),
    Check("startup_log", S9, "ดู startup log ว่ามีข้อความโหลดโมเดลสำเร็จ", startup_log),
    Check("rebuild_with_models", S9, "หากเป็น serverless ให้ rebuild image พร้อมโมเดล", rebuild_with_models),
)
CHECKS: tuple[Check, ...] = SEED_CHECKS + (
    Check("db_migrated", S10, "The stack's database has every migration of this checkout", db_migrated),
    Check("d1_retention", S10, "D1 is pruned: database.retention (Cron Trigger) or a recent `goldgate prune`",
          d1_retention),
    Check("database_room", S10,
          "The database has room to grow (D1: under 80 % of its 10 GB; local: free disk)", database_room),
    Check("custom_nodes_locked", S11, "Every custom node's Python dependencies are hash-locked "
          "(images/worker/custom_nodes.yaml `requirements:`)", custom_nodes_locked),
)


def run_checks(facts: Facts, checks: tuple[Check, ...] = CHECKS) -> list[CheckResult]:
    out = []
    for check in checks:
        try:
            status, evidence = check.judge(facts)
        except Exception as exc:  # noqa: BLE001 -- one broken fact must not hide the other lines
            status, evidence = FAIL, f"the check itself failed on these facts: {type(exc).__name__}: {exc}"
        out.append(CheckResult(check.id, check.section, check.line, status, evidence))
    return out


def failed(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.status == FAIL]


def to_json(stack: str, results: list[CheckResult]) -> dict[str, Any]:
    counts = {s: sum(1 for r in results if r.status == s) for s in (PASS, WARN, FAIL, NA)}
    return {"stack": stack, "passed": not failed(results), "counts": counts, "checks": [r.to_dict() for r in results]}


def render_text(data: dict[str, Any]) -> str:
    marks = {PASS: "PASS", WARN: "WARN", FAIL: "FAIL", NA: "n/a "}
    lines, section = [], None
    for c in data["checks"]:
        if c["section"] != section:
            section = c["section"]
            lines.append(f"\n{section}")
        # The line's id after its title (which keeps the seed checklist's words): the docs name lines by id.
        lines.append(f"  [{marks[c['status']]}] {c['line']}  (id: {c['id']})")
        lines.append(f"         {c['evidence']}")
    n = data["counts"]
    verdict = "READY" if data["passed"] else "NOT READY"
    lines.append(f"\n{data['stack']}: {verdict} ({n[PASS]} pass, {n[WARN]} warn, {n[FAIL]} fail, "
                 f"{n[NA]} n/a)")
    return "\n".join(lines).lstrip("\n")
