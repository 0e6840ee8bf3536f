"""docs/CLOUD.md, walked by a newcomer standing up STAGING and PROD: every name it tells them to set (GitHub
secrets and variables, per environment; Pulumi config keys; environment variables; stack outputs), every flag
it gives a command, and the first release by hand hold against the workflows, the CLI and the program."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml

from goldgate.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
CLOUD = (REPO / "docs" / "CLOUD.md").read_text(encoding="utf-8")
WORKFLOWS = ("release", "rollback")
NOT_SET_BY_HAND = {"GITHUB_TOKEN"}  # GitHub gives every job its own


def _workflow(name: str) -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / f"{name}.yml").read_text(encoding="utf-8"))


def _read(text: str, kind: str) -> set[str]:
    return set(re.findall(rf"\b{kind}\.([A-Z][A-Z0-9_]*)", text)) - NOT_SET_BY_HAND


def _setup_section() -> str:
    """The list of what to set up in the repository settings, up to the next paragraph that is not part of it."""
    start = CLOUD.index("Set up, in the repository settings")
    rest = CLOUD[start:]
    end = re.search(r"\n\n(?=[A-Za-z`*])", rest)
    return rest[:end.start()] if end else rest


def test_the_setup_list_names_exactly_the_secrets_and_variables_the_workflows_read() -> None:
    """A name in the list that no workflow reads (PULUMI_BACKEND_URL was one) is set for nothing: the newcomer's
    self-managed backend never reaches Pulumi in CI. A name a workflow reads that the list leaves out is missing."""
    texts = [(REPO / ".github" / "workflows" / f"{w}.yml").read_text(encoding="utf-8") for w in WORKFLOWS]
    read = set().union(*(_read(t, "secrets") | _read(t, "vars") for t in texts))
    named = set(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", _setup_section())) - NOT_SET_BY_HAND
    assert named - read == set(), "CLOUD.md tells you to set these in GitHub, but no workflow reads them"
    assert read - named == set(), "the workflows read these, but CLOUD.md's setup list does not name them"


def _secrets_by_environment() -> dict[str, set[str]]:
    """What each GitHub environment's jobs read, over both workflows."""
    found: dict[str, set[str]] = {}
    for name in WORKFLOWS:
        for job in _workflow(name)["jobs"].values():
            env = job.get("environment")
            env = env.get("name") if isinstance(env, dict) else env
            if env:
                found.setdefault(env, set()).update(_read(yaml.safe_dump(job), "secrets"))
    return found


def test_the_secret_table_gives_each_environment_what_its_jobs_read() -> None:
    """Environment secrets (what the doc asks for) reach only the jobs of that environment: the promote job, in
    `production`, reads STAGING's API token too (the gate's error rate). A secret left out of an environment that
    reads it fails that job; one put where no job reads it is exposure for nothing."""
    rows = re.findall(r"^\s*\| `([A-Z][A-Z0-9_]+)`[^|]*\|([^|]*)\|([^|]*)\|\s*$", _setup_section(), re.MULTILINE)
    assert rows, "CLOUD.md's setup list has no table of the secrets per environment (staging, production)"
    doc = {"staging": {name for name, s, _ in rows if s.strip().startswith("yes")},
           "production": {name for name, _, p in rows if p.strip().startswith("yes")}}
    assert doc == _secrets_by_environment()


def _subcommands() -> dict[str, set[str]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: {o for a in p._actions for o in a.option_strings} for name, p in sub.choices.items()}


def test_each_command_said_to_take_stacks_dir_takes_it() -> None:
    """`build`, `prune` and `dr-drill` have no --stacks-dir: a newcomer told they do gets a usage error."""
    commands = _subcommands()
    text = " ".join(CLOUD.split())
    sentences = [s for s in re.split(r"(?<=[.;])\s", text) if "`--stacks-dir`" in s]
    assert sentences
    wrong = {(c, s[:80]) for s in sentences for c in re.findall(r"`([a-z][a-z-]*)`", s)
             if c in commands and "--stacks-dir" not in commands[c]}
    assert wrong == set()


def test_the_first_release_by_hand_is_shown_step_by_step() -> None:
    """The walk from a deployed STAGING to a first PROD release: build, deploy STAGING, golden, the gate, promote,
    each as a command (tests/ops/test_docs_commands.py parses each with the real CLI)."""
    lines = [ln.split("#", 1)[0].split() for ln in CLOUD.splitlines() if ln.startswith("    goldgate ")]
    steps = [words[1] + (" " + words[2] if words[1] in ("deploy", "golden") else "") for words in lines]
    wanted = ["build", "deploy staging", "golden staging", "promote"]
    order = [steps.index(step) for step in wanted if step in steps]
    assert len(order) == len(wanted) and order == sorted(order), f"CLOUD.md's commands: {steps}"
    build = next(words for words in lines if words[1] == "build")
    assert "--repo" in build, "the cloud needs a pushed image: `goldgate build --repo`"
    assert re.search(r"export GOLDGATE_TARGET=cloud|--target cloud", CLOUD)


def test_every_goldgate_config_key_the_doc_names_is_read_by_the_program() -> None:
    # The program reads its keys by goldgate.spec's names; tests/infra/test_review28_inputfix_config_keys_read.py holds
    # those to what it reads.
    from goldgate.spec import CONFIG_KEYS

    keys = set(re.findall(r"\bgoldgate:([a-z][A-Za-z0-9]+)\b", CLOUD))
    assert keys and {k for k in keys if k not in CONFIG_KEYS} == set()


def test_every_stack_output_the_doc_lists_is_exported() -> None:
    program = (REPO / "infra" / "program.py").read_text(encoding="utf-8")
    exported = set(re.findall(r'"([a-z0-9_]+)": self\.', program.split("def exports", 1)[1].split("def ", 1)[0]))
    listed = CLOUD.split("Exports per stack:", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"`([a-z0-9_]+)`", listed)) == exported


def test_every_goldgate_environment_variable_the_doc_names_is_read() -> None:
    code = "".join(p.read_text(encoding="utf-8") for d in ("goldgate", "infra") for p in (REPO / d).rglob("*.py"))
    # `GOLDGATE_API_TOKEN_<STACK>` reads as GOLDGATE_API_TOKEN; the per-stack names are built from it in the code
    names = set(re.findall(r"\bGOLDGATE_[A-Z][A-Z0-9_]*[A-Z0-9]", CLOUD)) - {"GOLDGATE_API_TOKEN_STAGING",
                                                                           "GOLDGATE_API_TOKEN_PROD"}
    assert names and {n for n in names if n not in code} == set()
