"""What a reviewer found running the docs' commands verbatim (session 28): `python -m goldgate` had no __main__;
the checklist's text named no line by the id the docs use (`database_room`, `dr_drill`); docs/LOG_EVENTS.md said
`goldgate history` shows a whole ledger entry (only `--json` does); and runnable commands in
docs/D1_DISASTER_RECOVERY.md and docs/LOG_EVENTS.md hard-coded `.goldgate/`, wrong under GOLDGATE_HOME."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from goldgate.cli import main
from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts
from goldgate.release.ledger import Ledger

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
COMMANDS = ("goldgate", "grep", "sqlite3", "df", "du", "fuser", "ls", "cat", "tail", "rm", "mv", "cp")


def test_python_m_goldgate_is_the_goldgate_command():
    done = subprocess.run([sys.executable, "-m", "goldgate", "--help"], capture_output=True, text=True, timeout=120, check=False,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: goldgate ") and "dr-restore" in done.stdout


def test_the_checklist_text_names_each_line_by_its_id_after_its_title():
    results = checklist.run_checks(Facts(stack="staging", now=datetime.now(UTC)))
    text = checklist.render_text(checklist.to_json("staging", results))
    for check in checklist.CHECKS:
        assert f"] {check.line}  (id: {check.id})\n" in text, check.id
    for named in ("d1_retention", "database_room", "db_migrated", "dr_drill"):  # the ids the docs use
        assert f"(id: {named})" in text


def test_log_events_says_which_history_view_shows_the_whole_entry(tmp_path, capsys):
    text = " ".join((DOCS / "LOG_EVENTS.md").read_text(encoding="utf-8").split())
    assert "`goldgate history` shows the whole entry" not in text
    assert "`goldgate history --json` shows the whole entry" in text
    home = tmp_path / "home"
    Ledger(home).append("golden", target="local", stack="staging", suite="full", image="local/worker@sha256:"
                        + "c" * 64, passed=False, failures=["sdxl-portrait: the render differs from its reference"])
    capsys.readouterr()
    assert main(["history", "--home", str(home)]) == 0
    assert "render differs" not in capsys.readouterr().out  # the table: one row per entry
    assert main(["history", "--json", "--home", str(home)]) == 0
    assert "render differs" in capsys.readouterr().out


def _runnable(doc: Path) -> list[str]:
    """The commands a reader runs: the lines of its ```sh blocks and the inline code that starts with a command."""
    text = doc.read_text(encoding="utf-8")
    lines = [ln for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL) for ln in block.splitlines()]
    lines += [span for span in re.findall(r"`([^`\n]+)`", text) if span.split(" ", 1)[0] in COMMANDS]
    return lines


def test_runnable_commands_name_the_state_home_as_goldgate_home_does():
    for doc in ("D1_DISASTER_RECOVERY.md", "LOG_EVENTS.md"):
        hard = [ln for ln in _runnable(DOCS / doc)
                if re.search(r"(?<![-\w{:])\.goldgate/", ln.replace("${GOLDGATE_HOME:-.goldgate}", ""))]
        assert hard == [], f"docs/{doc}: {hard}"


def test_the_log_events_grep_reads_the_home_goldgate_home_names(tmp_path):
    text = (DOCS / "LOG_EVENTS.md").read_text(encoding="utf-8")
    grep = next(span for span in re.findall(r"`([^`\n]+)`", text) if span.startswith("grep -h "))
    logs = tmp_path / "home" / "stacks" / "prod" / "logs"
    logs.mkdir(parents=True)
    line = {"schema": "goldgate.log.v1", "level": "error", "event": "job.failed"}
    (logs / "service.jsonl").write_text(json.dumps(line, separators=(",", ":")) + "\n")
    done = subprocess.run(["bash", "-c", grep], check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "GOLDGATE_HOME": str(tmp_path / "home")})
    assert '"event":"job.failed"' in done.stdout, (grep, done.stderr)
