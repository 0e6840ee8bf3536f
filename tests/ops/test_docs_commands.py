"""Every `goldgate` command the operator docs give in a code block parses with the real CLI: a flag renamed or
dropped in the code fails here, not at 3 a.m. in the middle of an incident."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest

from goldgate.cli import COMMAND_MODULES, build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "docs/RUNBOOK.md", "docs/D1_DISASTER_RECOVERY.md", "docs/CLOUD.md")
# The docs' placeholders, as an operator fills them in.
PLACEHOLDERS = {
    "<release id | sha256 prefix | image ref>": "2026.11.0-gabc",
    '"$(pulumi stack output d1_id --stack prod)"': "12345678-1234-1234-1234-123456789abc",
    "<D1 uuid>": "12345678-1234-1234-1234-123456789abc",
    "<job_id>": "0" * 32, "JOB": "0" * 32, "<stack>": "staging", " S": " staging", "<stamp>": "20261129T041110Z",
    "REF": "local/worker@sha256:" + "a" * 64, "DIGEST": "sha256:" + "a" * 64, "REPO": "registry/worker",
    " F": " report.html", "...": "backup.sqlite", "staging | prod | all": "all", "staging | prod": "staging",
}


def _documented() -> list[tuple[str, str]]:
    found = []
    for name in DOCS:
        text = (REPO / name).read_text(encoding="utf-8")
        lines = [ln for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL) for ln in block.splitlines()]
        lines += [ln for ln in text.splitlines() if ln.startswith("    goldgate ")]  # the README's command list
        found += [(name, ln.split("#", 1)[0].strip()) for ln in lines if ln.strip().startswith("goldgate ")]
    return found


def test_the_docs_give_commands_to_check():
    assert {doc for doc, _ in _documented()} >= {"README.md", "docs/RUNBOOK.md", "docs/D1_DISASTER_RECOVERY.md"}


@pytest.mark.parametrize(("doc", "command"), _documented())
def test_a_documented_command_parses(doc: str, command: str) -> None:
    filled = re.sub(r"\[([^\]]*)\]", r"\1", command)  # `[--json]`: the optional part, given
    for placeholder, value in PLACEHOLDERS.items():
        filled = filled.replace(placeholder, value)
    try:
        build_parser().parse_args(shlex.split(filled)[1:])
    except SystemExit as exc:
        pytest.fail(f"{doc}: `{command}` does not parse (exit {exc.code})")


def _commands_of(module_name: str) -> set[str]:
    sub = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(module_name).register(sub)
    return set(sub.choices)


def test_interfaces_puts_every_command_in_its_area():
    text = (REPO / "docs/INTERFACES.md").read_text(encoding="utf-8")
    areas_line = " ".join(text.split("Areas: ", 1)[1].split(".\n", 1)[0].split())
    documented = {area: set(names.split(", ")) for area, names in re.findall(r"`(\w+)` \(([^)]*)\)", areas_line)}
    actual = {name.rsplit(".", 1)[1]: _commands_of(name) for name in COMMAND_MODULES}
    assert documented == actual, "docs/INTERFACES.md (CLI, Areas) lists other commands than goldgate/commands/ has"


def test_the_worker_readme_names_every_module():
    text = (REPO / "images/worker/README.md").read_text(encoding="utf-8")
    modules = {p.name for p in (REPO / "images/worker").glob("*.py")} - {"__init__.py"}
    assert {m for m in modules if f"`{m}`" not in text} == set(), "add each module to images/worker/README.md"


def test_the_dr_page_names_every_table_it_restores():
    text = (REPO / "docs/D1_DISASTER_RECOVERY.md").read_text(encoding="utf-8")
    tables = {t for sql in (REPO / "migrations").glob("*.sql")
              for t in re.findall(r"CREATE TABLE (\w+)", sql.read_text(encoding="utf-8"))}
    assert {t for t in tables if f"`{t}`" not in text} == set(), "name each D1 table in docs/D1_DISASTER_RECOVERY.md"


def _code_text(*dirs: str) -> str:
    return "".join(p.read_text(encoding="utf-8") for d in dirs for p in (REPO / d).rglob("*.py"))


def test_the_runbook_explains_every_gate_condition():
    runbook = (REPO / "docs/RUNBOOK.md").read_text(encoding="utf-8")
    names = set(re.findall(r'cond\("(\w+)"', (REPO / "goldgate/release/gate.py").read_text(encoding="utf-8")))
    assert names and {n for n in names if f"`{n}`" not in runbook} == set(), "add it to RUNBOOK's promotion table"


LOG_NAMESPACES = ("job", "webhook", "result", "retention", "service", "stack", "http", "worker", "object_store")


def test_every_log_event_the_docs_name_is_logged():
    code = _code_text("service", "goldgate", "images/worker")
    named = {event for doc in (*DOCS, "docs/INTERFACES.md", "images/worker/README.md")
             for event in re.findall(rf"`((?:{'|'.join(LOG_NAMESPACES)})\.[a-z_]+)`",
                                     (REPO / doc).read_text(encoding="utf-8"))}
    assert named and {e for e in named if f'"{e}"' not in code} == set()


def test_every_error_code_interfaces_answers_with_is_in_the_service():
    text = " ".join((REPO / "docs/INTERFACES.md").read_text(encoding="utf-8").split())
    codes = set(re.findall(r"\b[45]\d\d `([a-z_]+)`", text)) | set(re.findall(r"error code `([a-z_]+)`", text))
    code = _code_text("service")
    assert codes and {c for c in codes if f'"{c}"' not in code} == set()


def test_the_readme_lists_every_api_route():
    from service.app import ROUTES

    row = next(ln for ln in (REPO / "README.md").read_text(encoding="utf-8").splitlines() if ln.startswith("| API service"))
    routes = {f"{method} {pattern.pattern.strip('^$').split('(?P', 1)[0]}" for method, pattern, _ in ROUTES}
    assert {r for r in routes if f"`{r}" not in row} == set(), "name the route in README.md's API service row"


def test_interfaces_names_every_entry_of_the_local_state_directory():
    from goldgate.local import state

    layout = state.__doc__.split("Layout", 1)[1].splitlines()[1:]
    # each entry by its name: `images/<hex>/` as `images/`, `logs/*.jsonl` as `logs/`
    entries = {ln.split()[0].removeprefix("stacks/<stack>/").split("<", 1)[0].removesuffix("*.jsonl")
               for ln in layout if ln.startswith("    ")}
    text = (REPO / "docs/INTERFACES.md").read_text(encoding="utf-8").split("## State directory", 1)[1]
    section = " ".join(text.split("\n## ", 1)[0].split())
    assert entries and {e for e in entries if e not in section} == set(), \
        "name it in docs/INTERFACES.md's State directory section"
