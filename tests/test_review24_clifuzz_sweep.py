"""Every `goldgate` command, every option and positional, given hostile values: empty and blank, control characters,
100 KB, right-to-left overrides, combining marks and emoji, `../../etc/passwd`, an absolute path, `-`, numbers where
a name goes and names where a number goes, NaN, infinities and 1e309, dates out of range, stack names that are not
stacks (`Staging`, `prod `, `prod\\n`), job ids and image refs that are not ids or refs; each with and without --json.

Each is refused as a user is told it: exit 2 (the parser's usage and one line) or 1 (one `goldgate: error:` line,
after any progress lines), the line naming the option or the value, no traceback, nothing written in the state dir
or the working directory, no process started and no stack brought up (the commands that would bring one up are
given only values refused before it starts; a stand-in for each way of starting one fails the test if reached), and
no request leaving the machine."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from goldgate import cli
from goldgate import spec as specs
from goldgate.cli import build_parser, main, one_line

HEX = "0123456789abcdef" * 4
IMAGE = f"local/worker@sha256:{HEX}"
JOB = "0" * 32
PROD_FILE = str(specs.STACKS_DIR / "Pulumi.prod.yaml")

TEXT = {
    "empty": "", "blank": " \t", "escape": "\x1b[31mred", "newline": "a\nb", "cr": "ok\rbad", "100kb": "x" * 100_000,
    "rtl": "\u202egnirts", "combining": "e\u0301" * 5, "emoji": "🚀", "traversal": "../../etc/passwd",
    "absolute": "/etc/passwd", "dash": "-", "surrogate": "\udcff",
}
NUMBERS = {"zero": "0", "negative": "-1", "nan": "nan", "inf": "inf", "1e309": "1e309", "huge": "9" * 20,
           "float": "2.5", "word": "thirty"}
STACKS = {"capital": "Staging", "trailing-space": "prod ", "trailing-newline": "prod\n", "number": "42"}
DATES = {"month-13": "2026-13-45", "year-0": "0000-01-01", "past-9999": "9999-12-31T23:59:59-14:00"}
REFS = {"63-hex": f"local/worker@sha256:{HEX[:63]}", "upper-hex": f"local/worker@sha256:{HEX.upper()}",
        "tag": "local/worker:latest", "bare-digest": f"sha256:{HEX}", "no-repo": f"@sha256:{HEX}"}


def pick(kinds: dict[str, str], *names: str) -> dict[str, str]:
    return {k: kinds[k] for k in names}


# What each kind of argument is given: every text form, and the wrong things of its own kind and of the others.
NAME = {**TEXT, **STACKS, **pick(NUMBERS, "zero", "negative"), **pick(REFS, "tag")}
PATH = {**TEXT, **pick(STACKS, "trailing-newline"), **pick(REFS, "tag")}
NUMBER = {**pick(TEXT, "empty", "blank", "newline", "100kb", "emoji", "surrogate"), **NUMBERS, **pick(STACKS, "capital"),
          **pick(DATES, "month-13")}
DATE = {**pick(TEXT, "empty", "blank", "newline", "100kb", "rtl", "surrogate"), **DATES,
        **pick(NUMBERS, "zero", "negative", "nan", "1e309"), **pick(STACKS, "capital")}
REF = {**TEXT, **REFS, **pick(STACKS, "capital"), **pick(NUMBERS, "zero")}


def values(kinds: dict[str, str], *drop: str) -> dict[str, str]:
    """`kinds` but the values this argument takes (a refusal of them would be the bug)."""
    return {k: v for k, v in kinds.items() if k not in drop}


# (argv with V for the value, the values tried, whether the refusal must name the option or the value). A refusal
# need not name it where the command stops at something it checks first and says so (no database, no ledger entry).
SLOTS: list[tuple[list[str], dict[str, str], bool]] = [
    (["up", "V"], NAME, True),
    (["down", "V"], NAME, True),
    (["status", "V"], NAME, True),
    (["recover", "V", "--stack", "staging"], REF, True),
    (["recover", JOB, "--stack", "V"], NAME, True),
    (["cancel", "V", "--stack", "staging"], REF, True),
    (["cancel", JOB, "--stack", "V"], NAME, True),
    (["demo", "--stack", "V"], NAME, True),
    (["demo", "--out", "V"], pick(TEXT, "empty", "blank", "escape", "newline", "cr", "dash", "absolute"), True),
    (["demo", "--timeout", "V"], values(NUMBER, "float", "huge"), True),
    (["doctor", "--stack", "V"], NAME, True),
    (["doctor", "--image", "V"], REF, True),
    (["build", "--context", "V"], values(PATH, "tag"), True),
    # "100kb" and "dash" pass check_repo's pattern: test_a_repository_name_docker_refuses_is_refused_before_docker
    (["build", "--repo", "V"], values(REF, "zero", "tag", "100kb", "dash"), True),
    (["build", "--engine", "V"], NAME, True),
    (["build", "--target", "V"], NAME, True),
    (["build", "--workflow-version", "V"], values(REF, "zero", "capital"), True),
    (["deploy", "V", "--image", IMAGE], NAME, True),
    (["deploy", "V", "--image", IMAGE, "--target", "cloud"], NAME, True),
    (["deploy", "staging", "--image", "V"], REF, True),
    (["golden", "V"], NAME, True),
    (["golden", "V", "--target", "cloud"], NAME, True),
    (["golden", "staging", "--concurrency", "V"], NUMBER, True),
    (["promote", "--check", "--report", "V"], PATH, True),
    (["promote", "--check", "--image", "V"], REF, True),
    (["promote", "--check", "--reports-dir", "V"], PATH, True),
    (["promote", "--report", "V"], PATH, True),
    (["rollback", "--to", "V"], REF, False),
    (["history", "--limit", "V"], values(NUMBER, "huge"), True),
    (["history", "--target", "V"], NAME, True),
    (["release", "--staging", "V"], NAME, True),
    (["release", "--prod", "V"], NAME, True),
    (["release", "--context", "V"], values(PATH, "tag"), True),
    (["release", "--repo", "V"], REF, True),
    (["release", "--workflow-version", "V"], values(REF, "zero", "capital"), True),
    (["release", "--concurrency", "V"], NUMBER, True),
    (["check-prod-file", "--main-file", "V", "--stack-file", PROD_FILE], PATH, True),
    (["check-prod-file", "--main-file", PROD_FILE, "--stack-file", "V"], PATH, True),
    (["pins-onto-main", "--main-dir", "V", "--stacks-dir", str(specs.STACKS_DIR)], PATH, True),
    (["pins-onto-main", "--main-dir", ".", "--stack", "V"], NAME, True),
    (["dr-drill", "V"], NAME, True),
    (["dr-drill", "V", "--cloud"], NAME, True),
    (["dr-drill", "staging", "--api-base", "V"], PATH, True),
    (["dr-restore", "V", "--backup", "/nonexistent/b.sqlite"], NAME, True),
    (["dr-restore", "staging", "--backup", "V"], PATH, True),
    (["prune", "V", "--keep-days", "30"], NAME, True),
    (["prune", "staging", "--keep-days", "V"], NUMBER, True),
    (["prune", "staging", "--keep-days", "30", "--metrics-keep-days", "V"], NUMBER, True),
    (["prune", "staging", "--keep-days", "30", "--clock-checked", "V"], DATE, True),
    (["stuck", "V"], NAME, True),
    (["stuck", "staging", "--older-than", "V"], values(NUMBER, "zero"), True),
    (["stuck", "staging", "--limit", "V"], NUMBER, True),
    (["checklist", "V", "--offline"], NAME, True),
    (["checklist", "V", "--target", "cloud"], NAME, True),
    (["metrics", "V"], NAME, True),
    (["metrics", "V", "--target", "cloud"], NAME, True),
    (["metrics", "staging", "--since", "V"], DATE, True),
    (["metrics", "staging", "--html", "V"], PATH, False),
]


class _Reached(BaseException):
    """A stand-in for starting something was reached: a BaseException, so no command's `except` takes it."""


@pytest.fixture
def sealed(monkeypatch: pytest.MonkeyPatch) -> None:
    """No stack comes up, no image is built, no Docker engine is asked, no process starts (but the `git rev-parse`
    and `ps` a check reads) and no connection leaves this machine; no credential is in reach."""
    from goldgate.local import image_store
    from goldgate.local.platform import LocalPlatform
    from goldgate.release import build as builds

    def reached(what: str):
        def stand_in(*args: object, **kwargs: object) -> None:
            raise _Reached(what)
        return stand_in

    monkeypatch.setattr(LocalPlatform, "up", reached("a stack brought up"))
    monkeypatch.setattr(image_store, "build_local_image", reached("an image built"))
    monkeypatch.setattr(builds, "build_local", reached("an image built"))
    monkeypatch.setitem(sys.modules, "docker", types.SimpleNamespace(from_env=reached("a Docker engine asked")))

    class Popen(subprocess.Popen):
        def __init__(self, args, *rest, **kwargs) -> None:
            program = args[0] if isinstance(args, list | tuple) else str(args).split()[0]
            if program not in ("git", "ps"):
                raise _Reached(f"a process started: {str(args)[:80]}")
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Popen)
    connect = socket.socket.connect

    def loopback_only(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise _Reached(f"a connection to {address}")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    for name in ("RUNPOD_API_KEY", "RUNPOD_API_KEY_STAGING", "RUNPOD_API_KEY_PROD", "CLOUDFLARE_API_TOKEN",
                 "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "GOLDGATE_TARGET", "GOLDGATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    # main() builds the whole parser (every command's options) on each call: about nine tenths of this file's CPU
    # over its 2,000 calls. The parser depends only on the environment (a default or two read from it), so one built
    # for this test's environment parses every argv of the test as a fresh one would; each call still parses anew.
    built: dict[tuple[tuple[str, str], ...], argparse.ArgumentParser] = {}

    def build_parser_once() -> argparse.ArgumentParser:
        key = tuple(sorted(os.environ.items()))
        if key not in built:
            built[key] = build_parser()
        return built[key]

    monkeypatch.setattr(cli, "build_parser", build_parser_once)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _shown(value: str) -> str:
    """The start of `value` as an error line shows it (control characters escaped)."""
    return one_line(value.lstrip("./") or value)[:12]


def _takes_json(command: str) -> bool:
    parser = cli.build_parser()  # the test's own parser, once `sealed` made it
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return any("--json" in a.option_strings for a in sub.choices[command]._actions)


def _runs(template: list[str], cases: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    json = _takes_json(template[0])
    for name, value in cases.items():
        argv = [value if part == "V" else part for part in template]
        yield name, argv
        if json:
            yield f"{name} --json", [*argv, "--json"]


@pytest.mark.parametrize(("template", "cases", "names"), SLOTS, ids=[" ".join(s[0]) for s in SLOTS])
def test_a_hostile_value_is_refused_in_one_line_with_nothing_started_or_written(
        template: list[str], cases: dict[str, str], names: bool, sealed: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    option = template[template.index("V") - 1] if template[template.index("V") - 1].startswith("--") else "argument"
    problems = []
    for n, (name, argv) in enumerate(_runs(template, cases)):
        work, home = tmp_path / f"work{n}", tmp_path / f"home{n}"
        work.mkdir()
        home.mkdir()
        monkeypatch.chdir(work)
        try:
            code = main([*argv, "--home", str(home)])
        except SystemExit as exc:
            code = exc.code
        except _Reached as exc:
            problems.append(f"{name}: {exc} (not refused first)")
            capsys.readouterr()
            continue
        out, err = capsys.readouterr()
        lines = err.splitlines()
        last = lines[-1] if lines else ""
        value = cases[name.removesuffix(" --json")]
        why = []
        if code not in (1, 2):
            why.append(f"exit {code}")
        if "Traceback" in out + err:
            why.append("a traceback")
        if code == 2 and not (last.startswith(f"goldgate {argv[0]}: error: ") and lines[0].startswith("usage: ")
                              and all(line.startswith((" ", "usage: ")) for line in lines[:-1])):
            why.append(f"not usage and one line: {lines!r}")
        if code == 1 and not (last.startswith("goldgate: error: ")
                              and all(line.startswith("… ") for line in lines[:-1])):
            why.append(f"not one error line after progress: {lines!r}")
        if names and code in (1, 2) and not (option in last or _shown(value) in last or "empty or blank" in last):
            why.append(f"names neither {option} nor the value: {last!r}")
        written = [p for p in _tree(home) if p != "release.lock"]  # promote's and rollback's lock (INTERFACES.md)
        if written or _tree(work):
            why.append(f"wrote {written or _tree(work)}")
        if why:
            problems.append(f"{name}: {'; '.join(why)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("repo", ["x" * 100_000, "-", "..", "worker-"])
def test_a_repository_name_docker_refuses_is_refused_before_docker(repo: str, sealed: None, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(["build", "--home", str(tmp_path / "home"), "--repo", repo])
    except _Reached as exc:
        pytest.fail(f"{exc} for --repo {repo[:20]!r}: not refused first")
    assert code == 1
    assert "is not an image repository name" in capsys.readouterr().err.splitlines()[-1]
