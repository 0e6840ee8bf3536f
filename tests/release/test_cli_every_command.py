"""Every `goldgate` command and option, fed hostile input: one bounded error line, the right exit code, nothing lost.

Usage errors are checked at the parser (nothing runs, so no stack can start); errors the commands raise run
in-process against a scratch home, or in a subprocess where the failure mode is a hang or the stdout encoding.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from release_support import invoke
from test_golden_idempotent_create import TOKEN, live_stack

from goldgate.cli import build_parser

A = "local/worker@sha256:" + "a" * 64
LONG = "x" * 10_000
MAX_ERROR_CHARS = 1000


def the_error_line(err: str) -> str:
    """stderr is exactly one line naming the problem (progress lines aside), bounded, with no terminal escapes."""
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln and not ln.startswith("… ") and not ln.startswith("usage:")
             and not ln.startswith(" ")]
    assert len(lines) == 1, err[:2000]
    assert len(lines[0]) <= MAX_ERROR_CHARS, f"{len(lines[0])} chars: {lines[0][:200]}"
    assert "\x1b" not in err
    return lines[0]


_PARSERS: dict[tuple[tuple[str, str], ...], argparse.ArgumentParser] = {}


def _parser() -> argparse.ArgumentParser:
    """goldgate's parser as `build_parser()` makes it in this environment (its defaults read the
    environment, e.g. GOLDGATE_TARGET, when it is built): one per environment, as parsing changes nothing
    in a parser (about 15 ms of CPU a build, and this file parses some 400 times). PYTEST_CURRENT_TEST is
    pytest's, set per test."""
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"))
    if key not in _PARSERS:
        _PARSERS[key] = build_parser()
    return _PARSERS[key]


def parse(capsys: pytest.CaptureFixture, argv: list[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(argv)
    return exc.value.code, capsys.readouterr().err


# -- every command, every string option -----------------------------------------------------------

def _subparsers() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _required_argv(parser: argparse.ArgumentParser, skip: argparse.Action) -> list[str]:
    """Values for the command's required arguments, so only the argument under test is wrong."""
    argv: list[str] = []
    for action in parser._actions:
        if action is skip or action.help == argparse.SUPPRESS:
            continue
        if not action.option_strings and action.nargs is None:
            argv.append("0" * 32 if action.dest == "job_id" else "staging")
        elif action.option_strings and action.required:
            argv += [action.option_strings[0], A if action.dest == "image" else _valid_value(action)]
    return argv


def _valid_value(action: argparse.Action) -> str:
    """A value the option's type accepts: a stack name, else a number (`prune --keep-days`)."""
    for value in ("staging", "30"):
        try:
            (action.type or str)(value)
            return value
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            continue
    raise AssertionError(f"no known valid value for {action.option_strings[0]}")


def _string_arguments() -> list[tuple[str, str]]:
    cases = []
    for name, parser in _subparsers().items():
        for action in parser._actions:
            takes_text = action.nargs in (None, "?") and not isinstance(
                action, argparse._StoreConstAction | argparse._StoreTrueAction | argparse._HelpAction)
            if takes_text and action.help != argparse.SUPPRESS and action.dest != "help":
                cases.append((name, action.option_strings[0] if action.option_strings else action.dest))
    return cases


STRING_ARGUMENTS = _string_arguments()


def test_the_table_of_string_arguments_covers_every_command() -> None:
    assert {name for name, _ in STRING_ARGUMENTS} == set(_subparsers())
    assert len(STRING_ARGUMENTS) > 40


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
@pytest.mark.parametrize(("command", "argument"), STRING_ARGUMENTS)
def test_an_empty_or_blank_value_is_a_usage_error_naming_the_argument(
        capsys: pytest.CaptureFixture, command: str, argument: str, blank: str) -> None:
    # Before: '' meant "not given" (--home, --report, --stack, --image fell back to defaults), or a path
    # to the working directory (--context), or a traceback (dr-restore --backup '').
    parser = _subparsers()[command]
    action = next(a for a in parser._actions if (a.option_strings[:1] or [a.dest])[0] == argument)
    argv = [command, *_required_argv(parser, action)]
    argv += [argument, blank] if action.option_strings else [blank]
    code, err = parse(capsys, argv)
    assert code == 2
    line = the_error_line(err)
    assert f"argument {argument if action.option_strings else action.dest}:" in line


@pytest.mark.parametrize("argv", [
    ["golden", "staging", "--concurrency", "0"],
    ["golden", "staging", "--concurrency", "-3"],
    ["release", "--concurrency", "0"],
    ["release", "--concurrency", "-1"],
    ["golden", "staging", "--concurrency", "9" * 400],
])
def test_a_concurrency_below_one_or_absurd_is_a_usage_error(capsys: pytest.CaptureFixture, argv: list[str]) -> None:
    # Before: silently clamped to 1, and a release brought both stacks up before it ran the golden suite.
    code, err = parse(capsys, argv)
    assert code == 2 and "--concurrency" in the_error_line(err)


@pytest.mark.parametrize("value", ["bogus", "CLOUD", "", "x" * 10_000])
@pytest.mark.parametrize("command", [["deploy", "staging", "--image", A], ["history"], ["promote", "--check"]])
def test_a_bad_goldgate_target_in_the_environment_is_a_usage_error_naming_it(
        capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, value: str, command: list[str]) -> None:
    # Before: history ignored it (exit 0); the others said "unknown target" without naming GOLDGATE_TARGET.
    monkeypatch.setenv("GOLDGATE_TARGET", value)
    code, err = parse(capsys, command)
    assert code == 2 and "GOLDGATE_TARGET" in the_error_line(err)


# -- errors the commands raise: one line, bounded, no terminal escapes ----------------------------

@pytest.mark.parametrize("argv", [
    ["status", LONG],
    ["down", LONG],
    ["deploy", "staging", "--image", LONG],
    ["deploy", LONG, "--image", A],
    ["doctor", "--image", LONG],
    ["build", "--context", LONG],
    ["golden", "staging", "--cases-dir", LONG],
    ["promote", "--report", LONG],
    ["dr-restore", "staging", "--backup", LONG],
    ["history", "--limit", LONG],
    ["golden", "staging", "--concurrency", LONG],
    ["build", "--engine", LONG],
    ["history", "--target", LONG],
    ["demo", "--timeout", LONG, "--stack", "nosuch"],
])
def test_a_ten_thousand_character_value_gets_one_bounded_error_line(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                                    argv: list[str]) -> None:
    # Before: the whole value was echoed back, 10,000+ characters on one "line".
    code, out, err = invoke(capsys, *argv, "--home", str(tmp_path))
    assert code in (1, 2) and out == ""
    the_error_line(err)


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x1b[31mred", "a\x07b"])
@pytest.mark.parametrize("argv", [
    ["build", "--context", "{}"],
    ["golden", "staging", "--cases-dir", "{}"],
    ["promote", "--report", "{}"],
    ["dr-restore", "staging", "--backup", "{}"],
    ["metrics", "staging", "--target", "cloud", "--stacks-dir", "{}"],
])
def test_control_characters_in_a_value_never_split_or_colour_the_error_line(
        capsys: pytest.CaptureFixture, tmp_path: Path, argv: list[str], value: str) -> None:
    # Before: a newline in a path printed a second line; an escape sequence reached the terminal.
    code, _, err = invoke(capsys, *[a.replace("{}", value) for a in argv], "--home", str(tmp_path))
    assert code == 1
    the_error_line(err)


# -- the state dir ----------------------------------------------------------------------------------

def _not_a_directory(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / kind
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_text("not a state dir\n")
    return path


@pytest.mark.parametrize("kind", ["file", "fifo"])
@pytest.mark.parametrize("argv", [["history", "--json"], ["status", "--json"], ["rollback"], ["promote", "--check"]])
@pytest.mark.parametrize("via", ["--home", "GOLDGATE_HOME"])
def test_a_state_dir_that_is_not_a_directory_is_refused_before_anything_runs(
        capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str,
        argv: list[str], via: str) -> None:
    # Before: `history` printed [] and exited 0 over a file; others named a path deep inside it.
    home = _not_a_directory(tmp_path, kind)
    before = sorted(p.name for p in tmp_path.iterdir())
    if via == "--home":
        argv = [*argv, "--home", str(home)]
    else:
        monkeypatch.setenv("GOLDGATE_HOME", str(home))
    code, out, err = invoke(capsys, *argv)
    line = the_error_line(err)
    assert code == 1 and out == "" and str(home) in line and "not a directory" in line.lower() and via in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("value", ["   ", "\t"])
def test_a_blank_goldgate_home_is_refused_and_creates_nothing(capsys: pytest.CaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              value: str) -> None:
    # Before: a directory named "   " appeared in the working directory, holding release.lock.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOLDGATE_HOME", value)
    code, _, err = invoke(capsys, "rollback")
    assert code == 1 and "GOLDGATE_HOME" in the_error_line(err)
    assert list(tmp_path.iterdir()) == []


# -- files a command reads or writes ----------------------------------------------------------------

def _run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "goldgate.cli", *argv], capture_output=True, timeout=timeout,
                          check=False, env={**os.environ, **(env or {})})


def _stack_with_a_database(home: Path) -> None:
    from goldgate import migrations

    (home / "stacks" / "staging").mkdir(parents=True)
    migrations.apply_sqlite(home / "stacks" / "staging" / "db.sqlite")


def test_metrics_html_refuses_to_replace_a_file_it_did_not_write(capsys: pytest.CaptureFixture,
                                                                 tmp_path: Path) -> None:
    # Before: `--html /etc/passwd` replaced /etc/passwd with a chart.
    _stack_with_a_database(tmp_path)
    precious = tmp_path / "passwd"
    precious.write_text("root:x:0:0:root:/root:/bin/bash\n")
    code, out, err = invoke(capsys, "metrics", "staging", "--home", str(tmp_path), "--html", str(precious), "--json")
    assert code == 1 and out == ""
    assert str(precious) in the_error_line(err) and "not an HTML report goldgate wrote" in err
    assert precious.read_text() == "root:x:0:0:root:/root:/bin/bash\n"
    # Its own report, from an earlier run, is replaced as asked.
    report = tmp_path / "metrics.html"
    for _ in range(2):
        code, out, err = invoke(capsys, "metrics", "staging", "--home", str(tmp_path), "--html", str(report), "--json")
        assert code == 0 and json.loads(out)["stack"] == "staging", err
    assert report.read_text(encoding="utf-8").lower().startswith("<!doctype html>")


def test_metrics_html_refuses_a_fifo_instead_of_hanging(tmp_path: Path) -> None:
    _stack_with_a_database(tmp_path)
    fifo = tmp_path / "out.html"
    os.mkfifo(fifo)
    proc = _run(["metrics", "staging", "--home", str(tmp_path), "--html", str(fifo)])
    assert proc.returncode == 1
    assert "not a regular file" in the_error_line(proc.stderr.decode())


@pytest.mark.parametrize("encoding", ["ascii", "utf-8"])
def test_text_output_with_a_path_the_terminal_cannot_encode_is_printed_escaped(tmp_path: Path,
                                                                               encoding: str) -> None:
    # Before: UnicodeEncodeError traceback from print() when PYTHONIOENCODING was strict.
    home = tmp_path / os.fsdecode(b"h\xffome\xc3\xa9")
    proc = _run(["status", "staging", "--home", str(home)], env={"PYTHONIOENCODING": encoding})
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert b"Traceback" not in proc.stderr and b"staging: down" in proc.stdout


# -- found by following the README and the runbook on a fresh clone --------------------------------

@pytest.mark.parametrize("backup", [".", "{tmp}", "{tmp}/"])
def test_dr_restore_of_a_directory_is_one_line_not_a_traceback(capsys: pytest.CaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                               backup: str) -> None:
    # Before: `--backup .` raised ValueError ("has an empty name") from deep in the restore.
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(capsys, "dr-restore", "staging", "--home", str(tmp_path / "home"), "--backup",
                            backup.replace("{tmp}", str(tmp_path)))
    assert code == 1 and out == ""
    assert "not a file" in the_error_line(err)


@pytest.mark.parametrize("value", ["a\nb", "a\x1b[31mred", "a\rb"])
def test_doctor_refuses_a_model_root_with_control_characters(capsys: pytest.CaptureFixture, value: str) -> None:
    # Before: the value went into the report as it was: a second line, or colours on the terminal.
    code, err = parse(capsys, ["doctor", "--model-root", value])
    assert code == 2 and "--model-root" in the_error_line(err)


def test_doctor_takes_a_colon_separated_model_roots_list_like_the_worker(capsys: pytest.CaptureFixture,
                                                                         tmp_path: Path) -> None:
    # MODEL_ROOTS is colon-separated; pasting it into --model-root checked one directory named "a:b".
    a, b = tmp_path / "a", tmp_path / "b"
    code, out, _ = invoke(capsys, "doctor", "--json", "--model-root", f"{a}:{b}", "--model-root", str(tmp_path / "c"))
    assert code == 1 and json.loads(out)["model_roots"] == [str(a), str(b), str(tmp_path / "c")]


@pytest.mark.parametrize("value", ["h\nome", "h\x1b[31mome", "h\rome"])
@pytest.mark.parametrize("via", ["--home", "GOLDGATE_HOME"])
def test_a_state_dir_with_control_characters_is_refused_and_created_nowhere(
        capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, via: str) -> None:
    # Before: a directory with an escape sequence in its name was created, and the sequence reached the terminal
    # in every progress line that named a path under it.
    monkeypatch.chdir(tmp_path)
    argv = ["dr-drill", "staging"]
    if via == "--home":
        argv += ["--home", value]
    else:
        monkeypatch.setenv("GOLDGATE_HOME", value)
    code, out, err = invoke(capsys, *argv)
    assert code == 1 and out == "" and via in the_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_a_state_dir_nested_thousands_deep_is_one_line(capsys: pytest.CaptureFixture,
                                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Before: RecursionError from Path.mkdir(parents=True), a traceback thousands of lines long.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOLDGATE_HOME", "/".join(["d"] * 2000))
    code, out, err = invoke(capsys, "rollback")
    assert code == 1 and out == ""
    assert "nested too deeply" in the_error_line(err)
    # Refused, not made: a tree 2,000 deep is more than shutil.rmtree (and pytest's clean-up of old temp
    # dirs, which then failed every later test run) can remove.
    assert not (tmp_path / "d" / "d").exists()


def test_progress_lines_never_carry_terminal_escapes(capsys: pytest.CaptureFixture) -> None:
    from goldgate.commands.output import progress

    progress("copying /tmp/a\x1b[31mred\rb\nc")
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err and err.count("\n") == 1


def test_version_is_answered_not_a_missing_command_error(capsys: pytest.CaptureFixture) -> None:
    # Before: `goldgate --version` said "the following arguments are required: COMMAND" and exited 2.
    code, out, err = invoke(capsys, "--version")
    assert code == 0 and out.startswith("goldgate ") and err == ""


@pytest.mark.parametrize("job_id", ["../../queue/create", "abc?x=1", "abc#f", "a" * 5000, "g" * 32, "abc"])
def test_recover_refuses_what_is_not_a_job_id_before_any_request(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                                 job_id: str) -> None:
    # Before: the value went into the URL as it was: `../../queue/create` sent the admin's POST to
    # /api/queue/create, `?x=1` added a query string.
    code, out, err = invoke(capsys, "recover", job_id, "--stack", "staging", "--home", str(tmp_path))
    assert code == 1 and out == "" and "is not a job id" in the_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_recover_takes_a_job_id_pasted_in_upper_case(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = invoke(capsys, "recover", "ABCDEF0123456789ABCDEF0123456789", "--stack", "staging",
                          "--home", str(tmp_path))
    assert code == 1 and "staging is not up" in the_error_line(err)


def test_text_output_escapes_control_characters_but_keeps_its_lines(capsys: pytest.CaptureFixture) -> None:
    from goldgate.commands.output import emit

    emit(argparse.Namespace(json=False), {}, lambda _: "root /m\x1b[31mred\rX\n\tnext line \u202eevil")
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
    assert out.splitlines()[1] == "\tnext line \\u202eevil"


def test_demo_out_that_is_a_file_is_named_before_any_stack_starts(capsys: pytest.CaptureFixture,
                                                                  tmp_path: Path) -> None:
    # Before: the stack came up, then "File exists (...); check that the state dir (--home, GOLDGATE_HOME) is a
    # writable directory", which blamed the state dir for --out.
    out_file = tmp_path / "results"
    out_file.write_text("not a directory\n")
    home = tmp_path / "home"
    code, out, err = invoke(capsys, "demo", "--out", str(out_file), "--home", str(home))
    line = the_error_line(err)
    assert code == 1 and out == "" and "--out" in line and "state dir" not in line
    assert not home.exists() and out_file.read_text() == "not a directory\n"


@pytest.mark.parametrize("option", ["--reports-dir", "--references-dir", "--cases-dir"])
def test_a_golden_directory_that_is_a_file_is_named_before_anything_runs(capsys: pytest.CaptureFixture,
                                                                         tmp_path: Path, option: str) -> None:
    # Before: --reports-dir FILE ran the whole suite, then blamed the state dir ("File exists ...; check that the
    # state dir (--home, GOLDGATE_HOME) is a writable directory"); --cases-dir FILE said it "does not exist".
    a_file = tmp_path / "a-file"
    a_file.write_text("x\n")
    code, out, err = invoke(capsys, "golden", "staging", option, str(a_file), "--home", str(tmp_path / "home"))
    line = the_error_line(err)
    assert code == 1 and out == "" and option in line and "not a directory" in line


@pytest.mark.parametrize(("where", "blames_state_dir"), [("home/ledger.jsonl", True), ("reports/sub", False)])
def test_an_os_error_blames_the_state_dir_only_for_a_path_in_it(capsys: pytest.CaptureFixture,
                                                                monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                where: str, blames_state_dir: bool) -> None:
    # Before: every OSError said "check that the state dir (--home, GOLDGATE_HOME) is a writable directory", also
    # for --reports-dir or --out paths that have nothing to do with it.
    import goldgate.commands.release as release_commands

    def fails(_args: argparse.Namespace) -> int:
        raise NotADirectoryError(20, "Not a directory", str(tmp_path / where))

    monkeypatch.setattr(release_commands, "cmd_history", fails)
    code, _, err = invoke(capsys, "history", "--home", str(tmp_path / "home"))
    line = the_error_line(err)
    assert code == 1 and str(tmp_path / where) in line and ("state dir" in line) == blames_state_dir


@pytest.mark.parametrize("command", [["build"], ["deploy", "staging", "--image", A], ["rollback"]])
def test_a_trigger_is_recorded_on_one_line_and_bounded(capsys: pytest.CaptureFixture, command: list[str]) -> None:
    # Before: recorded as given: 100,000 characters in every ledger entry, or a newline that split `goldgate
    # history`'s table. A rollback's reason with a newline is recorded escaped, not refused.
    code, err = parse(capsys, [*command, "--trigger", "x" * 1001])
    assert code == 2 and "--trigger" in the_error_line(err)
    args = build_parser().parse_args([*command, "--trigger", "ci:rollback by me: smoke\nfailed \x1b[31m"])
    assert args.trigger == "ci:rollback by me: smoke\\nfailed \\x1b[31m"


def test_a_table_cell_never_spans_two_lines() -> None:
    from goldgate.commands.output import table

    assert len(table([{"trigger": "a\nb\rc"}], ["trigger"]).splitlines()) == 2


def test_an_unknown_option_shows_the_usage_of_the_command_it_was_given_to(capsys: pytest.CaptureFixture) -> None:
    # Before: `goldgate promote --dry-run` printed the top-level usage (`goldgate [-h] COMMAND ...`).
    code, _, err = invoke(capsys, "promote", "--dry-run")
    assert code == 2 and err.startswith("usage: goldgate promote ")
    assert "unrecognized arguments: --dry-run" in the_error_line(err)


@pytest.mark.parametrize("status_read", ["answers", "fails"])
def test_recover_says_why_the_job_failed_and_never_fails_after_the_recovery_was_applied(
        capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, status_read: str) -> None:
    # The real service behind a proxy that hangs up on the status read in the "fails" case; RunPod took the job,
    # never called its webhook back, and answers the recovery's /status call that it failed.
    from goldgate.local.platform import LocalPlatform

    monkeypatch.setattr(LocalPlatform, "api_token", lambda _self, _stack: TOKEN)
    with live_stack(tmp_path) as stack:
        stack.runpod.mode = "silent"
        stack.runpod.status_answer = {"status": "FAILED", "error": "RunPod has no job rp-1\nand its ttl has passed"}
        created = httpx.post(f"{stack.url}/api/queue/create", headers={"Authorization": f"Bearer {TOKEN}"},
                             json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse", "seed": 7}},
                             timeout=30)
        job_id = created.json()["job_id"]
        if status_read == "fails":
            stack.proxy.lose[f"GET /api/status/{job_id}"] = ["drop"]
        # The stack `recover` reaches is this service, through the proxy, not a stack host of the home.
        monkeypatch.setattr(LocalPlatform, "require_running", lambda _self, _stack: {"api_url": stack.url})
        code, out, _ = invoke(capsys, "recover", job_id, "--stack", "staging", "--home", str(tmp_path / "home"))
        status_reads = [path for method, path, _ in stack.proxy.seen if method == "GET"]
    assert code == 0 and status_reads == [f"/api/status/{job_id}"]
    lines = out.splitlines()
    assert lines[0] == f"{job_id}: failed (applied)"
    if status_read == "answers":  # a multi-line reason on one line under the job's: it cannot fake a line of recover's
        assert lines[1:] == ["  error: RunPod has no job rp-1\\nand its ttl has passed"]
    else:
        assert lines[1:] == []
