"""Every `goldgate` command the operator docs give in a code block parses with the real CLI: a flag renamed or
dropped in the code fails here, not at 3 a.m. in the middle of an incident."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from goldgate.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "docs/RUNBOOK.md", "docs/D1_DISASTER_RECOVERY.md", "docs/CLOUD.md")
# The docs' placeholders, as an operator fills them in.
PLACEHOLDERS = {
    "<release id | sha256 prefix | image ref>": "2026.11.0-gabc",
    '"$(pulumi stack output d1_id --stack prod)"': "12345678-1234-1234-1234-123456789abc",
    "<D1 uuid>": "12345678-1234-1234-1234-123456789abc",
    "<job_id>": "0" * 32, "JOB": "0" * 32, "<stack>": "staging", " S": " staging", "<stamp>": "20261129T041110Z",
    "REF": "local/worker@sha256:" + "a" * 64, "DIGEST": "sha256:" + "a" * 64, "REPO": "registry/worker",
    " F": " report.html", "...": "backup.sqlite", "staging | prod": "staging",
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
