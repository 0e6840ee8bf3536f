"""Every `goldgate` process builds the whole parser, `--help`, `--version` and a usage error included. Built from the
command modules, it imported the HTTP client (and with it rich and click), the image library and the stack code: a
third of a second of CPU before the command did anything, in every run and in each of the hundreds the test suite
starts. The parser now comes from the arguments modules alone, and a command's module is imported when it runs;
every subcommand keeps its help, its usage errors and its command function."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from goldgate.cli import COMMAND_MODULES
from goldgate.release.main_pins import STACKS

REPO = Path(__file__).resolve().parents[1]
# What a parse must not import: each costs tens of milliseconds or more of CPU, and only commands need it.
HEAVY = ("httpx", "rich", "click", "PIL", "yaml", "goldgate.spec", "goldgate.local.state", "goldgate.local.platform",
         "goldgate.runpod.control", "goldgate.release.cases", "goldgate.release.golden", "goldgate.commands.local",
         "goldgate.commands.release", "goldgate.commands.ops")

# Runs in a fresh interpreter: the CLI as a user runs it, then which of HEAVY it imported, then the command
# function each subcommand names (importing the command modules only then).
PROBE = r"""
import argparse, contextlib, importlib, io, json, sys

from goldgate.cli import build_parser, main


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
    return {"argv": list(argv), "code": code, "out": out.getvalue(), "err": err.getvalue()}


sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
runs = [run("--help"), run("status", "--bogus"), run("no-such-command")]
runs += [run(name, "--help") for name in sub.choices]
runs.append(run("--version"))
imported = sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)
functions = {}
for name, parser in sub.choices.items():
    func = parser.get_default("func")
    target = getattr(importlib.import_module(func.__module__), func.__name__, None)
    functions[name] = [func.__module__, func.__name__, callable(target)]
pins = next(a for a in sub.choices["pins-onto-main"]._actions if a.dest == "stacks")
print(json.dumps({"runs": runs, "imported": imported, "functions": functions, "pinned": list(pins.choices)}))
"""


def _probe() -> dict:
    run = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY)], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "COLUMNS": "100"}, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _every_command() -> set[str]:
    names: set[str] = set()
    for module in COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(sub)
        names |= set(sub.choices)
    return names


def test_help_version_and_usage_errors_import_no_command_module_and_every_subcommand_keeps_its_help() -> None:
    probe = _probe()
    assert probe["imported"] == [], "a parse imported what only commands need"

    top, usage_error, unknown, *helps, version = probe["runs"]
    assert top["code"] == 0 and top["out"].startswith("usage: goldgate [-h] [--version] COMMAND ...")
    assert usage_error["code"] == 2 and usage_error["out"] == ""
    assert "usage: goldgate status" in usage_error["err"] and "unrecognized arguments: --bogus" in usage_error["err"]
    assert unknown["code"] == 2 and "invalid choice: 'no-such-command'" in unknown["err"]
    assert version["code"] == 0 and version["out"].startswith("goldgate ") and version["out"].strip() != "goldgate"

    # Every area's commands are offered, each with its help, and each names a command function that exists.
    assert {h["argv"][0] for h in helps} == _every_command() == set(probe["functions"])
    for h in helps:
        name = h["argv"][0]
        assert h["code"] == 0 and h["err"] == "", name
        assert h["out"].startswith(f"usage: goldgate {name} [-h]") and "options:" in h["out"], name
    for name, (module, function, found) in probe["functions"].items():
        assert module in COMMAND_MODULES and function.startswith("cmd_") and found, name
    assert probe["pinned"] == list(STACKS)  # `pins-onto-main --stack` takes the stacks whose pins it moves
