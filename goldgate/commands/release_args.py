"""The arguments of the release commands (build, deploy, golden, promote, rollback, history, release,
check-prod-file, pins-onto-main); the commands themselves are in goldgate.commands.release, imported only when
one runs."""

from __future__ import annotations

import argparse
import os
import re

from goldgate.commands import add_command, handler
from goldgate.commands.output import add_json_flag, escape_controls
from goldgate.release import build as builds

COMMANDS = "goldgate.commands.release"
TARGETS = ("local", "cloud")
# The stacks whose pins `pins-onto-main` moves: goldgate.release.main_pins.STACKS, which imports the golden
# report's modules (and with them the image library).
PINNED_STACKS = ("staging", "prod")
# The table's default: the newest releases (about six entries each), the rollback targets an operator looks for.
# --json stays whole unless --limit is given: a script reads it.
HISTORY_SHOWN = 50


# -- what the arguments take ----------------------------------------------------------------------------

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a count of entries: use 1 or more")
    return value


def _concurrency(text: str) -> int:
    """How many golden cases run at once: 1 to MAX_CONCURRENCY (0 or less used to be clamped to 1 silently)."""
    from goldgate.release.golden import MAX_CONCURRENCY

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"{text} cases at once: use 1 to {MAX_CONCURRENCY}")
    return value


MAX_TRIGGER_CHARS = 1000


def _trigger(text: str) -> str:
    """Who or what asked (`ci:<run> by <actor>: <reason>`, `user:<name>`): recorded in every ledger entry and shown
    as one cell of `goldgate history`. A control character (a newline in a pasted reason) is recorded escaped rather
    than refused: a rollback must not fail over its reason; a value over MAX_TRIGGER_CHARS is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty or blank; give a value")
    if len(text) > MAX_TRIGGER_CHARS:
        raise argparse.ArgumentTypeError(f"is {len(text)} characters long; the ledger takes at most "
                                         f"{MAX_TRIGGER_CHARS}")
    return escape_controls(text)


def not_a_digest_ref(image: str) -> str:
    """Why `image` is refused where a stack's image is named: it is no `repo@sha256:<64 hex>` ref, and what it is
    instead when that can be told (a bare digest said "stacks never take a tag"), with what one looks like."""
    text = image if isinstance(image, str) else str(image)
    name = text.rsplit("/", 1)[-1]
    if re.fullmatch(r"(sha256:)?[0-9a-fA-F]{64}", text.strip()):
        what = "; it is a bare digest, with no repository before it"
    elif "@" not in text and ":" in name and text.strip() == text:
        what = "; it is a tag, which a stack never takes: a tag can be re-pointed to another image"
    else:
        what = ""
    return (f"{text!r} is not pinned by digest (not a repo@sha256:<64 hex> ref{what}): name the image as "
            "`goldgate build` printed it, like local/worker@sha256:<64 hex> (a local snapshot) or "
            "<registry>/<repository>@sha256:<64 hex> (a pushed image)")


def _digest_ref(text: str) -> str:
    from goldgate.spec import is_digest_ref

    if not is_digest_ref(text):
        raise argparse.ArgumentTypeError(not_a_digest_ref(text))
    return text


def _target(text: str) -> str:
    # argparse runs `type` on a string default but never checks it against `choices`: a GOLDGATE_TARGET typo
    # would otherwise reach the deployer, or be ignored by commands that do not deploy.
    if text not in TARGETS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a target: use local or cloud (--target, or the "
                                         "GOLDGATE_TARGET environment variable)")
    return text


def register(sub: argparse._SubParsersAction) -> None:
    default_target = os.environ.get("GOLDGATE_TARGET", "local")

    def add(name: str, func: str, help_text: str, golden_paths: bool = False,
            records: bool = True) -> argparse.ArgumentParser:
        p = add_command(sub, COMMANDS, name, func, help_text)
        if not records:  # it only reads the ledger: --target picks what to show; no --trigger, as nothing is recorded
            p.add_argument("--target", type=_target, choices=TARGETS, default=os.environ.get("GOLDGATE_TARGET"),
                           help="only the entries of this target's stacks, local or cloud (default: every entry; "
                                "env GOLDGATE_TARGET)")
        else:
            p.add_argument("--target", type=_target, choices=TARGETS, default=default_target,
                           help="local (the embedded target, default) or cloud (Pulumi + RunPod); env GOLDGATE_TARGET")
            p.add_argument("--trigger", type=_trigger,
                           help="who/what asked, for the ledger (default: CI run or local user)")
        if golden_paths:
            p.add_argument("--cases-dir", help="golden cases (default scripts/golden-tests/cases)")
            p.add_argument("--references-dir", help="reference images (default scripts/golden-tests/references/<target>)")
            p.add_argument("--reports-dir", help="reports (default scripts/golden-tests/reports)")
        add_json_flag(p)
        return p

    def build_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--context", default=str(builds.WORKER_DIR), help="build context (default images/worker)")
        p.add_argument("--dockerfile", default="Dockerfile", help="docker: the Dockerfile, relative to --context "
                                                                   "(default Dockerfile)")
        p.add_argument("--repo", help="image repository to push to (selects the docker engine)")
        p.add_argument("--engine", choices=("docker", "local"),
                       help="docker (push to --repo) or local (content-addressed local image store)")
        p.add_argument("--workflow-version", help="default: the staging stack's workflow_version")

    build_args(add("build", "cmd_build",
                   "build the worker image once, immutably tagged; print repo@sha256:<digest>"))
    p = add("deploy", "cmd_deploy", "deploy an image (by digest) to a non-PROD stack, e.g. STAGING")
    p.add_argument("stack", help="a stack in stacks/local.yaml (stacks/Pulumi.<stack>.yaml with --target cloud)")
    p.add_argument("--image", type=_digest_ref, required=True, help="repo@sha256:<digest>")
    p = add("golden", "cmd_golden", "run the golden cases against a stack's public API; write the report",
            golden_paths=True)
    p.add_argument("stack", help="a stack in stacks/local.yaml (stacks/Pulumi.<stack>.yaml with --target cloud)")
    p.add_argument("--smoke", action="store_true", help="only the smoke cases (does not replace latest.json)")
    p.add_argument("--update-references", action="store_true",
                   help="DELIBERATE USE ONLY: write this run's renders as the reference images: a case's new "
                        "reference, or one within the case's limits of its render; one CHANGED beyond them only for a "
                        "case --accept-changed names")
    p.add_argument("--case", dest="only_cases", action="append", metavar="CASE_ID",
                   help="run only this case (repeatable), e.g. a new case, to make its reference alone with "
                        "--update-references; such a run is not the golden suite and never becomes latest.json")
    p.add_argument("--accept-changed", action="append", metavar="CASE_ID", default=[],
                   help="with --update-references: replace this case's reference although its render CHANGED beyond "
                        "the case's limits, after you looked at it (repeatable)")
    p.add_argument("--concurrency", type=_concurrency, default=8, help="golden cases run at once (1-256, default 8)")
    p = add("promote", "cmd_promote", "gate the latest STAGING golden report, pin its digest on PROD, smoke, "
                                      "roll back automatically on failure", golden_paths=True)
    p.add_argument("--report", help="golden report to gate on (default scripts/golden-tests/reports/latest.json, "
                                    "or latest.json in --reports-dir)")
    p.add_argument("--check", action="store_true", help="only evaluate the gate; change nothing")
    p.add_argument("--image", type=_digest_ref, help="repo@sha256:<digest> you approve: refuse unless the report and "
                                                     "STAGING are for exactly it (CI passes the digest it built)")
    p.add_argument("--retry-rejected", action="store_true",
                   help="promote a digest PROD found wanting (its smoke failed there, or an operator rolled PROD off "
                        "it) once its cause on PROD is fixed; recorded in the ledger. A new STAGING golden run never "
                        "does this: a fault that shows only on PROD passes there")
    p = add("rollback", "cmd_rollback",
            "pin an earlier verified release on PROD, deploy, smoke", golden_paths=True)
    p.add_argument("--to", help="the verified release to pin: its release id, its digest (sha256:<64 hex>) or 7+ hex "
                                "of it, its image ref (<repo>@sha256:<64 hex>) or tag (<repo>:<release id>) "
                                "(default: the previous verified release; `goldgate history` lists them)")
    p = add("history", "cmd_history",
            "the release ledger: builds, deploys, golden runs, promotions, rollbacks", records=False)
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--limit", type=_positive_int,
                       help=f"only the last N entries (the table's default: {HISTORY_SHOWN}; --json: all)")
    shown.add_argument("--all", action="store_true", help="every entry in the table")
    p = add("release", "cmd_release", "the whole flow: build, deploy STAGING, golden, promote to PROD, smoke",
            golden_paths=True)
    build_args(p)
    p.add_argument("--staging", default="staging", help="the stack that tests the candidate (default staging)")
    p.add_argument("--prod", default="prod", help="the PROD stack the candidate is promoted to (default prod)")
    p.add_argument("--concurrency", type=_concurrency, default=8, help="golden cases run at once (1-256, default 8)")

    help_text = ("may a PROD job act on main's PROD stack file? Yes when it is this checkout's, or (with --report) "
                 "when only its pin moved, by a promotion recorded before the golden run that wrote the report")
    p = sub.add_parser("check-prod-file", help=help_text, description=help_text)
    p.add_argument("--main-file", required=True, help="main's stacks/Pulumi.prod.yaml (e.g. from `git show`)")
    p.add_argument("--stack-file", default="stacks/Pulumi.prod.yaml",
                   help="this checkout's PROD stack file (default stacks/Pulumi.prod.yaml)")
    p.add_argument("--report", help="the golden report that qualified the digest to promote (omit for a rollback)")
    p.add_argument("--home", help="state directory holding the ledger (default: $GOLDGATE_HOME or ./.goldgate)")
    add_json_flag(p)
    p.set_defaults(func=handler(COMMANDS, "cmd_check_prod_file"))
    help_text = ("write this checkout's STAGING and PROD pins over the pins of a checkout of main's head, changing "
                 "nothing else (STAGING's only when the ledger says STAGING runs it)")
    p = sub.add_parser("pins-onto-main", help=help_text, description=help_text)
    p.add_argument("--main-dir", required=True, help="a checkout of main's head (its stacks/ files are rewritten)")
    p.add_argument("--stacks-dir", default="stacks", help="this checkout's stack files (default stacks)")
    p.add_argument("--stack", dest="stacks", action="append", choices=PINNED_STACKS,
                   help="move only this stack's pin (repeatable; default both): a rollback changes PROD alone")
    p.add_argument("--home", help="state directory holding the ledger (default: $GOLDGATE_HOME or ./.goldgate)")
    add_json_flag(p)
    p.set_defaults(func=handler(COMMANDS, "cmd_pins_onto_main"))
