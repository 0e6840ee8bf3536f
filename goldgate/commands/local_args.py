"""The arguments of the local-target commands (up, down, reload, status, recover, demo, doctor); the commands
themselves are in goldgate.commands.local, imported only when one runs."""

from __future__ import annotations

import argparse
import math
import os

from goldgate.commands import add_command, path_to_create
from goldgate.commands.output import add_json_flag

COMMANDS = "goldgate.commands.local"


def _model_roots(text: str) -> list[str]:
    """One --model-root value: a directory, or a colon-separated list as in the worker's MODEL_ROOTS."""
    if any(not ch.isprintable() for ch in text):
        raise argparse.ArgumentTypeError(f"{text!r} holds a control character; give a directory")
    roots = [r for r in text.split(":") if r.strip()]
    if not roots:
        raise argparse.ArgumentTypeError("is empty or blank; give a directory")
    return roots


def _seconds(text: str) -> float:
    """A positive, finite number of seconds: NaN never compares past a deadline, so it would wait forever."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds greater than 0 (e.g. 180)")
    return value


def add_api_target(p: argparse.ArgumentParser) -> None:
    """--target for a command that calls a stack's API (recover, cancel): the cloud's is found by its Pulumi outputs."""
    from goldgate.commands.release_args import TARGETS, _target

    p.add_argument("--target", type=_target, choices=TARGETS, default=os.environ.get("GOLDGATE_TARGET", "local"),
                   help="local (default: a stack running under --home) or cloud (its API: the stack's `api_url` "
                        "Pulumi output and GOLDGATE_API_TOKEN[_<STACK>] or its goldgate:apiToken secret); env "
                        "GOLDGATE_TARGET")


def add_status_target(p: argparse.ArgumentParser) -> None:
    """--target for `status`, taken as every command takes it (GOLDGATE_TARGET too), so that the cloud is refused in
    words rather than answered with the local stacks."""
    from goldgate.commands.release_args import TARGETS, _target

    p.add_argument("--target", type=_target, choices=TARGETS, default=os.environ.get("GOLDGATE_TARGET", "local"),
                   help="local only (default; env GOLDGATE_TARGET): the stacks under --home. For a cloud stack, "
                        "`goldgate checklist <stack> --target cloud` reads its endpoint")


def register(sub: argparse._SubParsersAction) -> None:
    def add(name: str, func: str, help_text: str) -> argparse.ArgumentParser:
        return add_command(sub, COMMANDS, name, func, help_text)

    p = add("up", "cmd_up", "bring a local stack (or `all`) up in the background (idempotent)")
    p.add_argument("stack", help="a stack in stacks/local.yaml (staging, prod), or all")
    add_json_flag(p)
    p = add("down", "cmd_down", "stop a local stack (or `all`)")
    p.add_argument("stack", help="a stack in stacks/local.yaml (staging, prod), or all")
    p = add("reload", "cmd_reload", "apply a running local stack's secret files and `api` settings (or `all`'s) to "
                                    "its service: no job stops, no deploy, no ledger entry")
    p.add_argument("stack", help="a stack in stacks/local.yaml (staging, prod), or all")
    add_json_flag(p)
    p = add("status", "cmd_status", "what each local stack runs")
    p.add_argument("stack", nargs="?", help="a stack in stacks/local.yaml (default: every stack)")
    add_status_target(p)
    add_json_flag(p)
    p = add("recover", "cmd_recover", "settle a job whose webhook never came: one RunPod /status call")
    p.add_argument("job_id", help="the job's id (32 hex), as POST /api/queue/create answered")
    p.add_argument("--stack", required=True, help="the stack that holds the job")
    add_api_target(p)
    p.add_argument("--runpod-job-id", help="RunPod's id for a job that has none recorded: the runpod_job_id of the "
                                           "job's job.runpod_id_unrecorded log line (e.g. <uuid>-u1: 1 to 128 "
                                           "letters, digits, '.', '_' or '-', the first a letter or digit)")
    add_json_flag(p)
    p = add("demo", "cmd_demo", "bring up a stack and run one job per shipped workflow end to end")
    p.add_argument("--stack", default="staging", help="the local stack to run the jobs on (default staging)")
    p.add_argument("--out", type=path_to_create,
                   help="where to save the result images (default <home>/demo-results)")
    p.add_argument("--timeout", type=_seconds, default=180.0, help="seconds to wait for each job (default 180)")
    add_json_flag(p)
    p = add("doctor", "cmd_doctor", "first aid: are the models every workflow needs where ComfyUI looks?")
    p.description = ("first aid: are the models every workflow needs where ComfyUI looks? Bare, it checks this "
                     "machine's /comfyui/models and /workspace/ComfyUI/models (the worker's MODEL_ROOTS default), as "
                     "a worker image's preflight does: on a dev machine without them every model is MISSING. For a "
                     "local stack's image run `goldgate doctor --stack staging` (or prod); --image checks a local "
                     "image ref, --model-root other folders.")
    p.add_argument("--stack", help="check the image this local stack runs")
    p.add_argument("--image", help="check a local image ref")
    p.add_argument("--model-root", action="append", type=_model_roots,
                   help="model root to check (repeatable; a colon-separated list like MODEL_ROOTS works too)")
    p.add_argument("--sha256", action="store_true", help="also verify every file's sha256 (slow)")
    add_json_flag(p)
