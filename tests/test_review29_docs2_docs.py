"""What a reader of the operator docs met (session 29, docs2):

- `stuck`, `prune` and `dr-drill` take `--target cloud` as every other command does, and the README names them so;
  RUNBOOK, D1_DISASTER_RECOVERY, CLOUD and LOG_EVENTS still wrote `--cloud` for them, which reads as a flag of
  their own. Each cloud command they show now says `--target cloud` (and parses to the cloud); the one sentence
  that says `--cloud` is the same stays.
- RUNBOOK said every log line "starts with its timestamp", but a line starts `{"schema":"goldgate.log.v1","ts":`:
  sorting works because that prefix never changes, which is what it now says, and what each component writes.
- After the README's first command, `goldgate checklist` is NOT READY on `dr_drill` until a drill runs: RUNBOOK,
  where an incident starts with the checklist, says so and gives the drill commands."""

from __future__ import annotations

import io
import random
import re
import shlex
import time
from pathlib import Path
from types import SimpleNamespace

from goldgate.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
DOCS = ("docs/RUNBOOK.md", "docs/D1_DISASTER_RECOVERY.md", "docs/CLOUD.md", "docs/LOG_EVENTS.md")
D1_COMMANDS = ("stuck", "prune", "dr-drill")
FILL = {"<D1 uuid>": "12345678-1234-1234-1234-123456789abc", "<uuid>": "12345678-1234-1234-1234-123456789abc",
        "<id>": "12345678-1234-1234-1234-123456789abc", "...": "12345678-1234-1234-1234-123456789abc",
        '"$(pulumi stack output d1_id --stack prod)"': "12345678-1234-1234-1234-123456789abc",
        "<stack>": "staging", "<job_id>": "0" * 32}


def _text(doc: str) -> str:
    return (REPO / doc).read_text(encoding="utf-8")


def _flat(doc: str) -> str:
    return " ".join(_text(doc).split())


def _d1_command_spans(doc: str) -> list[str]:
    """Each `goldgate stuck|prune|dr-drill ...` of the doc, in a code span or an sh block, its comment cut off."""
    text = _text(doc)
    blocks = [ln.split("#", 1)[0].strip() for b in re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
              for ln in b.splitlines()]
    prose = re.findall(r"`([^`]+)`", " ".join(re.sub(r"```.*?```", " ", text, flags=re.DOTALL).split()))
    return [s for s in blocks + prose if re.match(rf"goldgate ({'|'.join(D1_COMMANDS)})\b", s)]


def test_the_operator_docs_name_the_cloud_of_stuck_prune_and_dr_drill_by_target_cloud():
    same = "(`--cloud`, the older spelling, is the same as `--target cloud` for `dr-drill`, `prune` and `stuck`"
    old = []
    for doc in DOCS:
        old += [f"{doc}: `{span}`" for span in _d1_command_spans(doc) if "--cloud" in span.split()]
        # the flag beside one of the three (`(add --cloud --database-id ... for D1)`, `(--cloud)`, `dr-drill --cloud`)
        prose = _flat(doc).replace(same, "")
        old += [f"{doc}: `{s}`" for s in re.findall(r"`([^`]*)`", prose)
                if s.split()[:1] == ["--cloud"] or (s.split()[:1] in ([c] for c in D1_COMMANDS) and "--cloud" in s)]
    assert old == [], "write --target cloud:\n" + "\n".join(old)
    # `--cloud` stays where a sentence says it is the same
    assert same in _flat("docs/D1_DISASTER_RECOVERY.md")


def test_each_cloud_command_of_the_three_the_docs_show_parses_to_the_cloud():
    cloud = []
    for doc in DOCS:
        for span in _d1_command_spans(doc):
            if "cloud" not in span.split():
                continue
            filled = span
            for placeholder, value in FILL.items():
                filled = filled.replace(placeholder, value)
            words = shlex.split(filled)[1:]
            if words[0] == "prune" and "--keep-days" not in words:
                words += ["--keep-days", "30"]  # `goldgate prune --target cloud` names the command, not a run
            if len(words) > 1 and words[1].startswith("-"):
                words.insert(1, "staging")
            args = build_parser().parse_args(words)
            assert args.target == "cloud" and not args.cloud, f"{doc}: `{span}`"
            cloud.append((doc, words[0]))
    assert {c for _, c in cloud} == set(D1_COMMANDS)
    assert {d for d, _ in cloud} == set(DOCS)


def _prefix_claims() -> list[str]:
    text = _flat("docs/RUNBOOK.md")
    return [m.group(0) for m in re.finditer(r"every line starts[^;)]*", text)]


def test_the_runbook_says_what_a_log_line_starts_with():
    claims = _prefix_claims()
    assert len(claims) == 2, claims  # the preflight lines' grep and "One job, end to end"
    for claim in claims:
        assert "starts with its timestamp" not in claim
        assert '`{"schema":"goldgate.log.v1","ts":`' in claim, claim
    one_job = _flat("docs/RUNBOOK.md").split("## One job, end to end", 1)[1].split("## ", 1)[0]
    assert "so sorting the lines sorts them by time" in one_job


def test_every_component_starts_its_lines_as_the_runbook_says_and_sort_puts_them_in_time_order():
    from goldgate.logs import JsonLogger
    from images.worker.logs import WorkerLog
    from service.logs import Logger

    prefix = '{"schema":"goldgate.log.v1","ts":"'
    out = io.StringIO()
    service_lines: list[str] = []
    writers = [JsonLogger("runpod-emulator", out, stack="staging").info,
               Logger(sink=service_lines.append, stack="staging").info,
               WorkerLog(out, stack="staging").info]
    written = []
    for i in range(9):
        writers[i % 3](f"step.{i}", trace_id="a" * 32)
        written.append(f"step.{i}")
        time.sleep(0.002)  # a new millisecond: the order is the ts, not the writing
    lines = out.getvalue().splitlines() + service_lines
    assert len(lines) == 9 and all(line.startswith(prefix) for line in lines), lines
    random.Random(29).shuffle(lines)
    assert [re.search(r'"event":"([^"]+)"', line).group(1) for line in sorted(lines)] == written


def test_the_runbook_says_a_first_release_leaves_the_checklist_not_ready_until_a_drill():
    from goldgate.ops.checklist import FAIL, dr_drill

    text = _flat("docs/RUNBOOK.md").split("For the cloud stacks", 1)[0]
    assert "right after the README's first `goldgate release` both stacks are NOT READY" in text
    assert "`dr_drill` (\"no DR drill recorded\")" in text
    assert "`goldgate dr-drill staging`" in text and "`goldgate dr-drill prod`" in text
    # the words it quotes are the checklist's
    verdict, evidence = dr_drill(SimpleNamespace(drill=None, drill_error=None, target="local", stack="prod"))
    assert verdict == FAIL and evidence.startswith("no DR drill recorded")
