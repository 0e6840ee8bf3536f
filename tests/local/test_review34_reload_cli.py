"""`goldgate reload`'s arguments and the advice that names it, with no stack running: a hostile stack name is refused
in words and creates nothing; `up`'s line for changed secret files and `goldgate client add|revoke` name `goldgate
reload <stack>` on PROD as on STAGING, where PROD's said `goldgate down prod && goldgate up prod` (which ended every
client's jobs in flight) and STAGING's a deploy of the image it runs (a ledger entry)."""

from __future__ import annotations

from pathlib import Path

import pytest
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # a usage error (argparse)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("stack", ["../staging", "staging\n", "STAGING", "nosuch", "all/../staging", "-", "ALL"])
def test_a_hostile_stack_name_is_refused_in_words_and_creates_nothing(tmp_path, capsys, stack):
    home = tmp_path / "home"
    code, out, err = _run(capsys, "reload", stack, "--home", str(home))
    assert code == 1 and out == "" and err.count("\n") == 1, (code, out, err)
    assert err.startswith("goldgate: error: ") and "no stack named" in err and "(stacks: prod, staging)" in err, err
    assert not (home / "stacks").exists() or [p.name for p in (home / "stacks").iterdir()] == []


def test_a_blank_stack_is_a_usage_error(tmp_path, capsys):
    code, _, err = _run(capsys, "reload", " ", "--home", str(tmp_path / "home"))
    assert code == 2 and "goldgate reload: error: argument stack: is empty or blank" in err, err


def test_reload_takes_one_stack_and_no_image(tmp_path, capsys):
    home = str(tmp_path / "home")
    assert _run(capsys, "reload", "--home", home)[0] == 2
    code, _, err = _run(capsys, "reload", "staging", "--image", "x", "--home", home)
    assert code == 2 and "unrecognized arguments: --image x" in err, err
    code, out, _ = _run(capsys, "reload", "--help")
    assert code == 0 and "no deploy, no ledger entry" in " ".join(out.split()), out


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_up_names_reload_as_the_way_to_apply_changed_secret_files(home: Path, stack: str) -> None:
    platform = LocalPlatform(home, stacks_file(home))
    d = StackDir(home, stack)
    d.ensure()
    d.secret_file("api_token_previous").write_text(d.secret("api_token"))
    d.secret_file("api_token").write_text("0123456789abcdef0123456789abcdef")
    advice = platform.secrets_changed_advice(stack)
    assert f"apply them with `goldgate reload {stack}` (no job stops, no ledger entry)" in advice, advice
    assert "goldgate deploy" not in advice and f"goldgate down {stack} && goldgate up {stack}" not in advice


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_client_add_and_revoke_name_reload_on_both_stacks(tmp_path, capsys, stack):
    home = str(tmp_path / "home")
    code, _, err = _run(capsys, "client", "add", "web", "--stack", stack, "--home", home)
    assert code == 0 and f"`goldgate reload {stack}` (no job stops, no ledger entry)" in err, err
    code, _, err = _run(capsys, "client", "revoke", "web", "--stack", stack, "--home", home)
    assert code == 0 and f"`goldgate reload {stack}`" in err and "goldgate deploy" not in err, err
    assert f"goldgate down {stack} && goldgate up {stack}" not in err, err
