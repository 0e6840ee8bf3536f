"""What the docs give a reader to type or look up, held against the code, beyond the fenced `sh` blocks
tests/ops/test_docs_commands.py parses and the names tests/test_docs_review11_contracts.py checks:

- every `goldgate ...` (or `<subcommand> --flag`) written inline in prose, in every doc: the subcommand exists,
  each flag is one it takes, and a command written whole parses;
- every stack setting (`endpoint.ttl_ms`, `local.faults.seed`, `goldgate:spec.database.name`), the RUNBOOK's
  fault-injection table (keys and defaults), the service config keys and `StackStatus` fields INTERFACES lists,
  every Pulumi output and config key the runbooks use, every repository path, link and anchor, and every section
  a doc or an error message sends the reader to;
- the README's "send a job" example, run as written against a local STAGING stack."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from ci_policy import needs

from goldgate.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted({REPO / "README.md", REPO / "service/README.md", *(REPO / "docs").glob("*.md"),
               *(REPO / "scripts").rglob("*.md"), *(REPO / "images").rglob("*.md")})


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _prose(path: Path) -> str:
    """The doc without its fenced blocks, on one line (an inline span may wrap)."""
    return " ".join(re.sub(r"```.*?```", " ", _text(path), flags=re.DOTALL).split())


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


SUBPARSERS = _subparsers()


def _options(sub: argparse.ArgumentParser) -> set[str]:
    options = {o for a in sub._actions for o in a.option_strings}
    for action in sub._actions:  # a command with actions of its own (`client add|revoke|list`): theirs too
        if isinstance(action, argparse._SubParsersAction):
            options |= {o for child in action.choices.values() for o in _options(child)}
    return options


def _positionals(sub: argparse.ArgumentParser, required: bool = False) -> list[str]:
    return [a.dest for a in sub._actions if not a.option_strings and (not required or a.nargs is None)]


def _inline_commands() -> list[tuple[str, str, list[str]]]:
    """(doc, the span as written, [subcommand, *words]) for each command in an inline code span."""
    found = []
    for doc in DOCS:
        for span in re.findall(r"`([^`]+)`", _prose(doc)):
            for part in re.split(r"&&|\|\||\||;", span):
                words = part.split()
                if words[:1] == ["goldgate"] and len(words) > 1:
                    words = words[1:]
                elif not (len(words) > 1 and words[0] in SUBPARSERS and words[1].startswith("--")):
                    continue  # `status`, `release.deployed`: a word, not a command
                found.append((_rel(doc), part.strip(), words))
    return found


INLINE = _inline_commands()
PLACEHOLDER = "\0"
# What an operator types for a placeholder, by the option (or positional) it fills.
FILL = {"--image": "local/worker@sha256:" + "a" * 64, "--database-id": "12345678-1234-1234-1234-123456789abc",
        "--stack": "staging", "--from-stack": "prod", "stack": "staging", "job_id": "0" * 32}
PLACEHOLDER_WORDS = {"S", "F", "REF", "DIGEST", "REPO", "JOB", "...", "N", "M"}


def _filled(words: list[str]) -> list[str]:
    """The command as a reader fills it in: `<the image it runs>` with an image ref, `<digest>` with a digest."""
    sub = SUBPARSERS[words[0]]
    positionals = iter(_positionals(sub))
    rest = " ".join(words[1:])
    meanings = iter(re.findall(r"<([^>]*)>", rest))
    out = [words[0]]
    for word in re.sub(r"<[^>]*>", PLACEHOLDER, rest).split():
        word = word.strip("[]")
        if word.startswith("-"):
            out.append(word)
            continue
        taker = out[-1] if out[-1].startswith("--") else next(positionals, "")
        meaning = " ".join(next(meanings) for _ in range(word.count(PLACEHOLDER)))
        if re.search(r"\bdigest\b", meaning) and not re.search(r"\b(ref|repo|image)\b|@", meaning):
            word = "sha256:" + "a" * 64
        elif PLACEHOLDER in word or word in PLACEHOLDER_WORDS:
            word = FILL.get(taker, "x")
        out.append(word)
    return out


def test_the_docs_write_inline_commands_to_check():
    docs = {doc for doc, _, _ in INLINE}
    assert {"README.md", "docs/RUNBOOK.md", "docs/INTERFACES.md", "docs/LOG_EVENTS.md",
            "scripts/golden-tests/README.md"} <= docs
    assert len(INLINE) > 80


@pytest.mark.parametrize(("doc", "span", "words"), INLINE, ids=[f"{d}: {s}" for d, s, _ in INLINE])
def test_an_inline_command_names_a_subcommand_and_flags_it_takes(doc: str, span: str, words: list[str]) -> None:
    assert words[0] in SUBPARSERS, f"{doc}: `{span}`: goldgate has no command {words[0]!r}"
    options = _options(SUBPARSERS[words[0]])
    unknown = [w for w in (w.strip("[]").split("=", 1)[0] for w in words[1:]) if w.startswith("--")
               and w not in options]
    assert unknown == [], f"{doc}: `{span}`: `goldgate {words[0]}` takes no {', '.join(unknown)}"


KNOWN = [(doc, span, words) for doc, span, words in INLINE if words[0] in SUBPARSERS]


@pytest.mark.parametrize(("doc", "span", "words"), KNOWN, ids=[f"{d}: {s}" for d, s, _ in KNOWN])
def test_what_an_inline_command_gives_parses(doc: str, span: str, words: list[str]) -> None:
    # Prose names part of a command (`goldgate recover`, `check-prod-file --report`, `build --repo`): what it
    # gives must parse (a value of the right form, a choice that exists), what it leaves out is the reader's.
    argv = _filled(words)
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            build_parser().parse_args(argv)
    except SystemExit:
        message = errors.getvalue().strip().splitlines()[-1]
        left_out = "the following arguments are required" in message or (
            message.endswith("expected one argument") and argv[-1].startswith("--"))
        assert left_out, f"{doc}: `{span}` does not parse as `goldgate {' '.join(argv)}`: {message}"
    from goldgate.spec import is_digest_ref

    # `deploy --image` checks its ref only when it runs: a stack takes repo@sha256:<hex>, never a bare digest
    images = [argv[i + 1] for i, w in enumerate(argv[:-1]) if w == "--image"]
    assert all(is_digest_ref(i) for i in images), f"{doc}: `{span}`: --image takes the repo@sha256:... ref"


# ---- stack settings -------------------------------------------------------------------------------------------

def _spec_sections() -> dict[str, type]:
    from goldgate import spec

    return {"endpoint": spec.EndpointSpec, "storage": spec.StorageSpec, "database": spec.DatabaseSpec,
            "api": spec.ApiSpec, "thresholds": spec.Thresholds, "local": spec.LocalSpec, "cloud": spec.CloudSpec}


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _setting_exists(key: str) -> bool:
    from goldgate import spec

    nested = {(spec.DatabaseSpec, "retention"): spec.RetentionSpec, (spec.LocalSpec, "faults"): spec.Faults,
              (spec.ApiSpec, "rate_limits"): spec.RateLimitsSpec}
    head, *rest = key.split(".")
    cls = _spec_sections().get(head)
    if cls is None:
        return head in _fields(spec.StackSpec) and not rest
    for i, name in enumerate(rest):
        if name not in _fields(cls):
            return False
        if i < len(rest) - 1:
            cls = nested.get((cls, name))
            if cls is None:
                return False
    return True


def _log_events() -> set[str]:
    return set(re.findall(r"^\| `([a-z_.]+)`", _text(REPO / "docs/LOG_EVENTS.md"), re.MULTILINE))


def test_every_stack_setting_the_docs_name_is_a_stack_spec_field():
    sections = "|".join(_spec_sections())
    not_settings = _log_events() | {"api.example.com"}  # `endpoint.created` is an event, that one a host
    named = set()
    for doc in DOCS:
        text = _text(doc)
        named |= {(_rel(doc), k) for k in re.findall(rf"`((?:{sections})(?:\.[a-z_]+)+)`", text)
                  if k not in not_settings and k.rsplit(".", 1)[1] not in {"py", "md", "json", "yaml"}}
        named |= {(_rel(doc), k) for k in re.findall(r"goldgate:spec\.([a-z_]+(?:\.[a-z_]+)*)", text)}
    assert len(named) > 30
    assert {(doc, k) for doc, k in named if not _setting_exists(k)} == set(), "no such setting in goldgate/spec.py"


def _table(text: str, header: str) -> list[list[str]]:
    block = text.split(header, 1)[1].split("\n\n", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in block.splitlines()[2:]]


def test_the_runbooks_fault_table_gives_every_fault_with_the_emulators_default():
    from goldgate.spec import Faults

    documented = {}
    for keys, defaults, _ in _table(_text(REPO / "docs/RUNBOOK.md"), "| key | default | what it does |"):
        names = re.findall(r"`([a-z_]+)`", keys)
        values = [yaml.safe_load(v) for v in defaults.split(",")]
        assert len(names) == len(values), f"RUNBOOK fault table row {keys}: one default per key"
        documented.update(zip(names, values, strict=True))
    actual = {name: f.default for name, f in _fields(Faults).items()}
    assert set(documented) == set(actual), "docs/RUNBOOK.md's fault table lists other keys than spec.Faults has"
    assert {k: v for k, v in documented.items() if v != actual[k]} == {}, "the table's default is not the code's"


def test_interfaces_names_every_service_config_key():
    from service.config import ServiceConfig

    section = _text(REPO / "docs/INTERFACES.md").split("## Service configuration", 1)[1].split("\n## ", 1)[0]
    assert {k for k in _fields(ServiceConfig) if f"`{k}`" not in section} == set(), \
        "name the key in docs/INTERFACES.md, Service configuration"


def test_interfaces_names_every_status_field_goldgate_status_json_prints():
    from goldgate.local.platform import StackStatus

    paragraph = " ".join(_text(REPO / "docs/INTERFACES.md").split("`StackStatus` (frozen dataclass", 1)[1]
                         .split("\n\n", 1)[0].split())
    names = set(re.findall(r"[a-z_]+", paragraph))
    assert {k for k in _fields(StackStatus) if k not in names} == set(), \
        "name the field in docs/INTERFACES.md, Local platform (`StackStatus`)"


# ---- Pulumi names the runbooks use ------------------------------------------------------------------------------

def test_every_stack_output_a_doc_reads_is_exported():
    program = _text(REPO / "infra/program.py")
    exported = set(re.findall(r'"([a-z0-9_]+)": self\.', program.split("def exports", 1)[1].split("def ", 1)[0]))
    read = {(_rel(d), name) for d in DOCS for name in re.findall(r"pulumi stack output ([a-z0-9_]+)", _text(d))}
    assert {doc for doc, _ in read} >= {"docs/RUNBOOK.md", "docs/D1_DISASTER_RECOVERY.md", "docs/CLOUD.md"}
    assert {(doc, name) for doc, name in read if name not in exported} == set()


def test_every_goldgate_config_key_a_runbook_sets_or_reads_is_the_programs():
    # docs/CLOUD.md's own keys: tests/ops/test_review14_d1_cloud_doc.py. The program reads its keys by goldgate.spec's
    # names, and a test holds those to what it reads (tests/infra/test_review28_inputfix_config_keys_read.py).
    from goldgate.spec import CONFIG_KEYS

    keys = {(_rel(d), k) for d in DOCS if d.name != "CLOUD.md"
            for k in re.findall(r"\bgoldgate:([a-z][A-Za-z0-9]+)\b", _text(d))}
    assert {k for _, k in keys} >= {"apiToken", "webhookSecret", "webhookSecretPrevious"}
    assert {(doc, k) for doc, k in keys if k not in CONFIG_KEYS} == set()


# ---- paths, links, sections ----------------------------------------------------------------------------------

TOP_DIRS = ("service/", "goldgate/", "images/", "infra/", "scripts/", "tests/", "bench/", "migrations/", "stacks/",
            "docs/", ".github/", ".ci/")


def test_every_repository_path_the_docs_give_exists():
    tops = "|".join(map(re.escape, TOP_DIRS))
    named = {(_rel(d), m.group(1)) for d in DOCS
             for m in re.finditer(rf"(?<![\w./-])((?:{tops})[\w./*-]*[\w/*])(?![\w.*]*<)", _text(d))
             if not re.search(r"[A-Z]{4}", m.group(1))}  # `migrations/NNNN_name.sql`: a pattern
    assert len(named) > 60
    assert {(doc, p) for doc, p in named if not (REPO / p).exists() and not any(REPO.glob(p))} == set()


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_and_anchor_in_the_docs_resolves():
    links = [(d, link) for d in DOCS for link in re.findall(r"\]\(([^)\s]+)\)", _text(d))
             if not link.startswith(("http://", "https://"))]
    assert len(links) > 8
    broken = []
    for doc, link in links:
        path, _, anchor = link.partition("#")
        target = doc.parent / path if path else doc
        anchors = {_slug(h) for h in re.findall(r"^#+ (.*)$", _text(target), re.MULTILINE)} if target.exists() else set()
        if not target.exists() or (anchor and anchor not in anchors):
            broken.append((_rel(doc), link))
    assert broken == []


DOC_FILES = {"RUNBOOK": "docs/RUNBOOK.md", "README": "README.md", "CLOUD": "docs/CLOUD.md",
             "D1_DISASTER_RECOVERY": "docs/D1_DISASTER_RECOVERY.md", "INTERFACES": "docs/INTERFACES.md",
             "LOG_EVENTS": "docs/LOG_EVENTS.md"}
SECTION_REF = re.compile(r"(RUNBOOK|README|CLOUD|D1_DISASTER_RECOVERY|INTERFACES|LOG_EVENTS)(?:\.md)?,?\s+"
                         r"\\?[\"“]([A-Z][^\"”\\]{2,80}?)\\?[\"”]")


def _section_exists(doc: str, title: str) -> bool:
    """A heading, a bold lead (`**Tearing a stack down.**`) or a paragraph or list item that begins so."""
    text = _text(REPO / DOC_FILES[doc])
    starts = re.findall(r"^(?:#+ |\*\*|- \*\*|\d+\. \*\*)?(.*)$", text, re.MULTILINE)
    return any(s.strip('"').startswith(title) for s in starts)


def test_every_section_a_doc_or_an_error_message_sends_the_reader_to_exists():
    sources = [*DOCS, *(p for d in ("goldgate", "service", "infra", "images/worker") for p in (REPO / d).rglob("*.py"))]
    refs = {(_rel(src), doc, title) for src in sources
            for doc, title in SECTION_REF.findall(" ".join(_text(src).split()))}
    assert {title for _, _, title in refs} >= {"A stuck job", "Rotate the webhook secret", "RPO and RTO",
                                              "No checkpoint models appear to be available"}
    assert {r for r in refs if not _section_exists(r[1], r[2])} == set(), "a renamed section: point at its new name"


def test_the_interfaces_workflow_example_is_the_shipped_workflow():
    text = _text(REPO / "docs/INTERFACES.md").split("## Workflows", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    example_id = re.search(r'"id": "([^"]+)"', text).group(1)
    shipped = json.loads(_text(REPO / f"images/worker/workflows/{example_id}.json"))
    params = [json.loads(p) for p in re.findall(r'\{"name": .*?"input": "[a-z_]+"\}', " ".join(text.split()))]
    by_name = {p["name"]: p for p in shipped["parameters"]}
    assert params and re.search(r'"version": "([^"]+)"', text).group(1) == shipped["version"]
    assert [p for p in params if by_name.get(p["name"]) != p] == [], \
        f"docs/INTERFACES.md, Workflows: the example's parameters are not {example_id}.json's"


# ---- the README's "send a job" example, run -------------------------------------------------------------------

def _send_a_job_block() -> list[str]:
    text = _text(REPO / "README.md").split("To send a job to a local stack yourself", 1)[1].split("\n## ", 1)[0]
    lines = [ln[4:] for ln in text.splitlines() if ln.startswith("    ")]
    joined = "\n".join(lines)
    assert "<job_id>" in joined and joined.startswith("API=")
    return joined.split("\n")


def _json_documents(out: str) -> list[dict]:
    decoder, docs, i = json.JSONDecoder(), [], 0
    while i < len(out):
        if out[i].isspace():
            i += 1
            continue
        doc, i = decoder.raw_decode(out, i)
        docs.append(doc)
    return docs


@needs(shutil.which("bash") is not None and shutil.which("curl") is not None, "bash and curl")
def test_the_readmes_send_a_job_example_runs_as_written(tmp_path: Path) -> None:
    from goldgate.local.platform import LocalPlatform

    bindir = Path(sys.executable).parent
    assert (bindir / "goldgate").exists(), "the README's commands run the venv's `goldgate`"
    env = {**os.environ, "GOLDGATE_HOME": str(tmp_path / "home"), "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("GOLDGATE_TARGET", None)
    lines = _send_a_job_block()
    setup, status_line = [ln for ln in lines if "<job_id>" not in ln], next(ln for ln in lines if "<job_id>" in ln)
    defs = "\n".join(ln for ln in setup if ln.startswith(("API=", "auth()")))

    def bash(script: str) -> str:
        done = subprocess.run(["bash", "-c", "set -e -o pipefail\n" + script], check=False, cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"README example failed: {done.stderr[-2000:]}"
        return done.stdout

    try:
        bash("goldgate up staging >/dev/null")
        workflows, created = _json_documents(bash("\n".join(setup)))
        assert {"sdxl-txt2img", "flux-schnell-lora"} <= {w["id"] for w in workflows["workflows"]}
        assert all("parameters" in w for w in workflows["workflows"])
        assert created["status"] == "queued" and re.fullmatch(r"[0-9a-f]{32}", created["job_id"])
        status_script = defs + "\n" + status_line.replace("<job_id>", created["job_id"])
        deadline = time.monotonic() + 90
        while (status := _json_documents(bash(status_script))[0])["status"] in ("queued", "in_progress"):
            assert time.monotonic() < deadline, f"job still {status['status']} after 90 s"
            time.sleep(0.2)
        assert status["status"] == "completed", status
        with urllib.request.urlopen(status["results"][0]["url"], timeout=30) as answer:  # signed: no token
            assert answer.status == 200 and answer.headers["Content-Type"] == "image/png"
    finally:
        LocalPlatform(tmp_path / "home").down("staging")


def test_every_goldgate_variable_any_doc_names_is_read():
    # code -> docs: tests/test_docs_review11_contracts.py; docs/CLOUD.md -> code: tests/ops/test_review14_d1_cloud_doc.py
    code = "".join(_text(p) for d in ("goldgate", "infra", "images/worker", "scripts", ".github")
                   for p in (REPO / d).rglob("*") if p.suffix in {".py", ".mjs", ".yml", ".sh"})
    named = {(_rel(d), v) for d in DOCS for v in re.findall(r"\bGOLDGATE_[A-Z][A-Z0-9_]*[A-Z0-9]", _text(d))}
    named -= {(d, v) for d, v in named if v.startswith("GOLDGATE_API_TOKEN_")}  # `_<STACK>`, built in the code
    assert len(named) > 10
    assert {(doc, v) for doc, v in named if v not in code} == set()


def test_interfaces_gives_the_worker_environments_defaults_as_the_worker_has_them():
    from images.worker import config

    text = " ".join(_text(REPO / "docs/INTERFACES.md").split("## Worker process environment", 1)[1]
                    .split("\n## ", 1)[0].split())
    assert f"`COMFY_URL` (default `{config.DEFAULT_COMFY_URL}`)" in text
    assert f"`COMFY_READY_TIMEOUT_S` (the cold-start wait; default {config.DEFAULT_READY_TIMEOUT_S:g})" in text
    assert f"`COMFY_JOB_TIMEOUT_S` (the whole job from its start, cold start included; default " \
           f"{config.DEFAULT_JOB_TIMEOUT_S:g};" in text
    assert f"`MODEL_ROOTS` (colon-separated, default `{':'.join(config.DEFAULT_MODEL_ROOTS)}`)" in text
    assert f"`COMFY_OUTPUT_DIR` (ComfyUI's output folder, default `{config.DEFAULT_OUTPUT_DIR}`" in text


def test_the_local_platform_calls_interfaces_shows_are_the_platforms():
    import inspect

    from goldgate.local.platform import LocalPlatform

    block = _text(REPO / "docs/INTERFACES.md").split("## Local platform", 1)[1].split("```python", 1)[1].split("```")[0]
    calls = [call for line in block.splitlines() if line.startswith("platform.")  # `api_token(stack) / ...`
             for call in re.findall(r"(?:^platform\.|/ )(\w+)\(([^)]*)\)", line.split(" -> ", 1)[0])]
    assert len(calls) >= 10
    wrong = []
    for name, args in calls:
        method = getattr(LocalPlatform, name, None)
        params = set(inspect.signature(method).parameters) if method else set()
        given = {a.split(":")[0].split("=")[0].strip() for a in args.split(",") if a.strip()}
        if method is None or not given <= params:
            wrong.append((name, sorted(given - params)))
    assert wrong == [], "docs/INTERFACES.md, Local platform: no such method or parameter"
