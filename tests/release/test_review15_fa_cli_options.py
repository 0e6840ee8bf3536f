"""Options the command line takes are checked when they are read and used by the command that takes them.

- `deploy --image` is checked as arguments are read (a usage error, exit 2, as `promote --image`), and no message
  calls a bare digest a "tag": it says the value is no repo@sha256:<64 hex> ref and what one looks like.
- `history --target` shows that target's entries (it was accepted and ignored: every entry shown), and history
  takes no `--trigger` (it records nothing).
- The cloud-only options of dr-drill, checklist and metrics, given without --cloud / --target cloud, are refused
  instead of ignored while the local stack is acted on.
- No subcommand registers an option its handler never reads (an AST walk of goldgate/commands)."""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

import pytest

from goldgate.cli import build_parser, main
from goldgate.commands.release import do_deploy
from goldgate.errors import GoldgateError
from goldgate.release.ledger import Ledger

REPO = Path(__file__).resolve().parents[2]
A = "local/worker@sha256:" + "a" * 64
CLOUD = "127.0.0.1:5000/goldgate-worker@sha256:" + "c" * 64
BARE = "sha256:" + "a" * 64


def _invoke(capsys: pytest.CaptureFixture, home: Path, *argv: str) -> tuple[int, str, str]:
    try:
        code = main([*argv, "--home", str(home)])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _error(err: str) -> str:
    (line,) = [ln for ln in err.splitlines() if "error:" in ln]
    return line


# -- deploy --image -------------------------------------------------------------------------------

@pytest.mark.parametrize("image", [BARE, "a" * 64, "local/worker:latest", "local/worker@sha256:abc", ""],
                         ids=["bare-digest", "bare-hex", "a-tag", "short-digest", "empty"])
def test_deploy_refuses_an_image_that_is_no_digest_ref_as_arguments_are_read(
        capsys: pytest.CaptureFixture, tmp_path: Path, image: str) -> None:
    code, out, err = _invoke(capsys, tmp_path / "home", "deploy", "staging", "--image", image)
    assert code == 2 and out == ""
    line = _error(err)
    assert f"argument --image: {image!r} is not pinned by digest" in line
    assert "repo@sha256:<64 hex>" in line and "local/worker@sha256:<64 hex>" in line  # what one looks like
    assert ("tag" in line) == (image == "local/worker:latest"), line
    assert not (tmp_path / "home").exists()  # refused before the state dir, the ledger or a stack was touched


@pytest.mark.parametrize("image", [BARE, "local/worker:latest"])
def test_deploy_and_promote_say_the_same(capsys: pytest.CaptureFixture, tmp_path: Path, image: str) -> None:
    _, _, deploy = _invoke(capsys, tmp_path, "deploy", "staging", "--image", image)
    _, _, promote = _invoke(capsys, tmp_path, "promote", "--image", image)
    assert _error(deploy).split("argument --image: ")[1] == _error(promote).split("argument --image: ")[1]


def test_do_deploy_tells_a_library_caller_a_bare_digest_is_no_ref_not_a_tag(tmp_path: Path) -> None:
    class Staging:  # do_deploy asks the deployer for the stack's role first
        def spec(self, _stack: str) -> argparse.Namespace:
            return argparse.Namespace(role="staging")

        def deploy(self, *_a: object) -> None:
            pytest.fail("deployed an image that is no digest ref")

    with pytest.raises(GoldgateError) as refused:
        do_deploy(Staging(), Ledger(tmp_path), "staging", BARE, "test")  # type: ignore[arg-type]
    message = str(refused.value)
    assert "tag" not in message and "bare digest" in message and "repo@sha256:<64 hex>" in message
    assert "local/worker@sha256:<64 hex>" in message


# -- history --target -----------------------------------------------------------------------------

def _mixed_ledger(home: Path) -> None:
    ledger = Ledger(home)
    ledger.append("build", image=A, release_id="r1", trigger="test")  # a build names no target: shown with either
    ledger.append("deploy", stack="staging", target="local", before=None, after=A, image=A, trigger="test")
    ledger.append("deploy", stack="staging", target="cloud", before=None, after=CLOUD, image=CLOUD, trigger="test")


@pytest.mark.parametrize(("target", "kinds"), [("cloud", [("build", None), ("deploy", "cloud")]),
                                               ("local", [("build", None), ("deploy", "local")])])
def test_history_shows_only_the_entries_of_the_target_asked_for(
        capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str,
        kinds: list[tuple[str, str | None]]) -> None:
    monkeypatch.delenv("GOLDGATE_TARGET", raising=False)
    _mixed_ledger(tmp_path)
    code, out, _ = _invoke(capsys, tmp_path, "history", "--target", target, "--json")
    assert code == 0
    assert [(e["kind"], e.get("target")) for e in json.loads(out)] == kinds
    code, out, _ = _invoke(capsys, tmp_path, "history", "--target", target)
    assert code == 0 and f"2 entries (the {target} target's; 1 of the other target not shown)" in out
    # Without --target (or GOLDGATE_TARGET) the whole ledger, as before.
    code, out, _ = _invoke(capsys, tmp_path, "history", "--json")
    assert code == 0 and len(json.loads(out)) == 3
    monkeypatch.setenv("GOLDGATE_TARGET", target)  # as every --target command takes it
    code, out, _ = _invoke(capsys, tmp_path, "history", "--json")
    assert [(e["kind"], e.get("target")) for e in json.loads(out)] == kinds


def test_history_takes_no_trigger(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = _invoke(capsys, tmp_path, "history", "--trigger", "user:me")
    assert code == 2 and "--trigger" in _error(err)


# -- cloud-only options on the local target -------------------------------------------------------

@pytest.mark.parametrize(("argv", "named", "add"), [
    (["dr-drill", "staging", "--database-id", "12345678-1234-1234-1234-123456789abc"], "--database-id", "--cloud"),
    (["dr-drill", "staging", "--bucket", "goldgate-backups"], "--bucket", "--cloud"),
    (["checklist", "staging", "--offline", "--database-id", "x"], "--database-id", "--target cloud"),
    (["checklist", "staging", "--offline", "--logs-dir", "logs"], "--logs-dir", "--target cloud"),
    (["metrics", "staging", "--stacks-dir", "stacks"], "--stacks-dir", "--target cloud"),
])
def test_a_cloud_option_without_the_cloud_is_refused_not_ignored(
        capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], named: str,
        add: str) -> None:
    monkeypatch.delenv("GOLDGATE_TARGET", raising=False)
    code, out, err = _invoke(capsys, tmp_path / "home", *argv)
    assert code == 1 and out == ""
    line = _error(err)
    assert f"{named} is for the cloud: add {add}" in line
    assert not (tmp_path / "home" / "backups").exists()  # no local drill ran in its place


# -- every option registered is read --------------------------------------------------------------

def _functions() -> dict[str, list[ast.FunctionDef]]:
    found: dict[str, list[ast.FunctionDef]] = {}
    for path in sorted((REPO / "goldgate" / "commands").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                found.setdefault(node.name, []).append(node)
    return found


FUNCTIONS = _functions()


def _reads(name: str, param: str, seen: set[tuple[str, str]]) -> set[str]:
    """The attributes of `param` that function `name` reads (`param.x`, `getattr(param, "x")`), and those read by
    the goldgate/commands functions it hands `param` to, by position or keyword."""
    if (name, param) in seen:
        return set()
    seen.add((name, param))
    out: set[str] = set()
    for fn in FUNCTIONS.get(name, []):
        for node in ast.walk(fn):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == param:
                out.add(node.attr)
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            if (node.func.id == "getattr" and len(node.args) >= 2 and isinstance(node.args[0], ast.Name)
                    and node.args[0].id == param and isinstance(node.args[1], ast.Constant)):
                out.add(str(node.args[1].value))
            if node.func.id == "_refuse_cloud_options":
                continue  # refusing an option is no use of it
            for callee in FUNCTIONS.get(node.func.id, []):
                params = [a.arg for a in callee.args.posonlyargs + callee.args.args]
                for i, arg in enumerate(node.args):
                    if isinstance(arg, ast.Name) and arg.id == param and i < len(params):
                        out |= _reads(node.func.id, params[i], seen)
                for kw in node.keywords:
                    if isinstance(kw.value, ast.Name) and kw.value.id == param and kw.arg:
                        out |= _reads(node.func.id, kw.arg, seen)
    return out


def _subcommands() -> list[tuple[str, argparse.ArgumentParser]]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices.items())


@pytest.mark.parametrize(("name", "parser"), _subcommands(), ids=[name for name, _ in _subcommands()])
def test_no_subcommand_takes_an_option_its_handler_never_reads(name: str, parser: argparse.ArgumentParser) -> None:
    handler = parser.get_default("func")
    assert handler is not None and handler.__name__ in FUNCTIONS, f"{name}: no handler in goldgate/commands"
    read = _reads(handler.__name__, "args", set())
    assert read, f"{name}: {handler.__name__} reads nothing of args: the walk found no `args`"
    registered = {a.dest for a in parser._actions if not isinstance(a, argparse._HelpAction)}
    assert registered - read == set(), f"`goldgate {name}` takes options {handler.__name__} never reads"


def test_the_walk_finds_an_option_nobody_reads() -> None:
    # The check above can fail: history's --trigger, as it was registered, is found unread.
    parser = argparse.ArgumentParser()
    parser.add_argument("--trigger")
    parser.add_argument("--limit")
    read = _reads("cmd_history", "args", set())
    assert {a.dest for a in parser._actions if a.dest != "help"} - read == {"trigger"}
