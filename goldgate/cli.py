"""The `goldgate` command line: parses arguments, runs one command, turns errors into one line."""

from __future__ import annotations

import sys

# Ctrl-C in the first tenth of a second of a command, while Python loads this module and what it imports, printed a
# traceback of import lines (`import json`, `import hashlib`) from the console script, where no handler of ours is:
# said as every other interrupt is, with the exit code a shell gives it.
try:
    import argparse
    import errno
    import importlib
    import os
    import unicodedata
    from pathlib import Path
    from typing import IO, NoReturn

    from goldgate.commands.output import encodable, say, to_devnull
    from goldgate.errors import GoldgateError
    from goldgate.release.interrupt import how, sigterm_interrupts
    from goldgate.release.ledger import secrets_taken_from_env
except KeyboardInterrupt:
    if sys.stderr is not None:  # None: started with stderr closed (`2>&-`)
        sys.stderr.write("goldgate: interrupted\n")
    raise SystemExit(130) from None

# Each module runs its area's commands (a command's `func(args) -> int`), and its arguments module,
# `<module>_args`, registers their subcommands (`register(subparsers)`). The parser is built from the
# arguments modules alone: every `goldgate` process builds it, and the command modules import what their
# commands need (the HTTP client, the image library, the stack code), which no parse needs.
COMMAND_MODULES = ("goldgate.commands.local", "goldgate.commands.release", "goldgate.commands.ops",
                   "goldgate.commands.clients")

# An error line longer than this is cut: the value that made it long (a pasted file, a 10,000-character argument) is
# rarely the part an operator needs; the start, the advice at the end and the commands it names (in backticks) are.
MAX_ERROR_CHARS = 600


def _cut(text: str, keep: int) -> str:
    """`text` cut in its middle to about `keep` characters, saying how many went."""
    return f"{text[:keep * 2 // 3]}…({len(text) - keep} characters cut)…{text[-(keep // 3):]}"


def one_line(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """`message` as one bounded terminal line: control characters escaped (no second line, no colours). A longer one
    is cut in its prose, longest run first, keeping its first 200 characters (what failed) and every `command` whole
    (a cut command cannot be copied and run); only a line that is all of those is cut anywhere."""
    text = "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
                   for ch in message)
    if len(text) <= limit:
        return text
    parts = text.split("`")   # the prose at even indexes, the commands between backticks at odd ones
    if len(parts) % 2 == 1:
        head, parts[0] = parts[0][:200], parts[0][200:]
        uncut = set(range(0, len(parts), 2))
        while uncut and len(head) + len("`".join(parts)) > limit:
            longest = max(uncut, key=lambda i: len(parts[i]))
            uncut.discard(longest)
            over = len(head) + len("`".join(parts)) - limit
            # The cut's own words take up to 40 characters; a run too short to cover the excess keeps 60 of its own.
            keep = max(len(parts[longest]) - over - 40, 60)
            if keep + 40 < len(parts[longest]):
                parts[longest] = _cut(parts[longest], keep)
        shortened = head + "`".join(parts)
        if len(shortened) <= limit:
            return shortened
    return _cut(text, limit - 40)


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one bounded line too (they echo the offending value)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")

    def _print_message(self, message: str, file: IO[str] | None = None) -> None:
        # argparse drops a failed write: `goldgate status --help > /dev/full` exited 0 with nothing written, or 120
        # with "Exception ignored" when the buffered text failed at exit. --help and --version on stdout fail as any
        # command's output does (a one-line error and 1; quietly when the reader left, `| head`). A usage error
        # echoes the value given, written as stderr's reader can read it (ASCII under LC_ALL=C), as our errors are.
        if message and file is sys.stdout:
            say(message, end="")
        else:
            super()._print_message(encodable(message, file or sys.stderr) if message else message, file)


def _text(text: str) -> str:
    # An empty value means "not given" to most commands (`--home ''` fell back to $GOLDGATE_HOME, `--report ''`
    # to latest.json, `--context ''` to the working directory): refuse it rather than guess.
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty or blank; give a value")
    return text


def _refuse_blank_values(parser: argparse.ArgumentParser) -> None:
    """Every argument that takes free text gets `_text` (arguments with their own type check themselves)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _refuse_blank_values(child)
        elif action.type is None and action.nargs != 0 and isinstance(action, argparse._StoreAction
                                                                        | argparse._AppendAction):
            action.type = _text


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("goldgate")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


class _VersionAction(argparse._VersionAction):
    """--version, with the installed version looked up only when it is asked for: the look-up imports
    importlib.metadata and searches the installed packages, CPU that every run paid, --version or not."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        self.version = f"goldgate {_version()}"
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="goldgate",
        description="Ship ComfyUI on RunPod serverless + Cloudflare to production: "
                    "build once, golden-test on STAGING, promote the same digest to PROD, roll back.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            arguments = importlib.import_module(f"{name}_args")
        except ModuleNotFoundError as exc:
            if exc.name != f"{name}_args":
                raise
            continue
        arguments.register(sub)
    _refuse_blank_values(parser)
    return parser


def check_home(args: argparse.Namespace) -> None:
    """The state dir (--home or $GOLDGATE_HOME) must be a directory or not exist yet; refuse it before any command
    reads an empty ledger from it or writes a lock beside it."""
    given = getattr(args, "home", None)
    via = "--home" if given else "GOLDGATE_HOME"
    value = given or os.environ.get("GOLDGATE_HOME")
    if value is None or value == "":
        return
    if not value.strip():
        raise GoldgateError(f"{via} is blank; set it to the state directory, or unset it for ./.goldgate")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise GoldgateError(f"{via} {value!r} holds a control character (a newline, an escape sequence); set it to "
                            "the state directory's path")
    if value == "~" or value.startswith("~/"):  # `--home=~/x`, a quoted "~/x", CI's env: nothing expanded the ~
        raise GoldgateError(f"{via} {value} begins with a ~ that was not expanded (the shell expands it only at the "
                            "start of a word, not after `--home=`, inside quotes or in a CI env block), so the state "
                            f"would go into a directory named ~ here: give the full path, {_expanded(value)}")
    path = Path(value)
    try:  # every command resolves it, and pathlib says a loop of links with a RuntimeError no command expects
        path.resolve()
    except RuntimeError:
        raise GoldgateError(f"{via} {value}: its symbolic links form a loop; set it to the state directory's "
                            "path") from None
    if path.exists() and not path.is_dir():
        raise GoldgateError(f"{via} {value}: Not a directory; the state dir (--home, GOLDGATE_HOME) must be a "
                            "directory, or not exist yet (it is then created)")


def _expanded(value: str) -> str:
    try:
        return str(Path(value).expanduser())
    except RuntimeError:  # no HOME and no password entry: name the variable instead
        return "$HOME" + value[1:]


def _in_state_dir(args: argparse.Namespace, filename: object) -> bool:
    """Whether a failing path is the state dir or under it (no path named: assume it is)."""
    if not isinstance(filename, str | bytes | os.PathLike):
        return True
    home = getattr(args, "home", None) or os.environ.get("GOLDGATE_HOME") or ".goldgate"
    try:
        return Path(os.fsdecode(filename)).absolute().is_relative_to(Path(home).absolute())
    except (ValueError, OSError):
        return True


def _advice(args: argparse.Namespace, exc: OSError) -> str:
    """What to check after `exc` on a path: the state dir or the path given, for what the error says is wrong."""
    state_dir = _in_state_dir(args, exc.filename)
    what = "the state dir (--home, GOLDGATE_HOME)" if state_dir else "that path"
    if exc.errno == errno.ENAMETOOLONG:  # free space and permissions would be the wrong things to check
        return f"shorten {what}: a name in it is longer than the file system allows"
    if exc.errno == errno.ELOOP:
        return f"check {what}: its symbolic links form a loop"
    # Free space and permissions would be the wrong things to check here too: something is in the way.
    if exc.errno == errno.EISDIR and exc.filename:
        return f"a directory is where {what} needs a file: move {os.fsdecode(exc.filename)} out of the way"
    if exc.errno == errno.ENOTDIR and exc.filename:
        return f"a file is where {what} needs a directory: move {_file_in_the_way(exc.filename)} out of the way"
    return ("check that the state dir (--home, GOLDGATE_HOME) is a writable directory with free space" if state_dir
            else "check that path: a writable directory with free space")


def _file_in_the_way(filename: str | bytes | os.PathLike) -> str:
    """The nearest parent of `filename` that exists and is not a directory (`stacks/staging` as a file, for
    `stacks/staging/state.json`), else the path itself."""
    path = Path(os.fsdecode(filename))
    for parent in reversed(path.parents):
        try:
            if parent.exists() and not parent.is_dir():
                return str(parent)
        except OSError:
            break
    return str(path)


def _reopen_closed_std_fds() -> None:
    """Put /dev/null on a closed stdin, stdout or stderr (`goldgate ... 2>&-`). With fd 2 closed, sys.stderr is None
    and print(file=None) wrote progress and errors to stdout, into --json output; and a closed fd is the next one a
    file takes, so a child process writing its output there would write into that file."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free fd: this one, as the lower ones are open
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 -- lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 -- lives as long as the process


def main(argv: list[str] | None = None) -> int:
    # The ledger key and the save token reach the ledger, never a process the command starts (Pulumi and its plugins,
    # docker, the golden run): taken before anything else runs, so no import or check can start one that holds them.
    # SIGTERM (a cancelled CI job) ends a command as Ctrl-C does: what it was doing unwinds and says what it left.
    try:
        with secrets_taken_from_env(), sigterm_interrupts():
            return _main(argv)
    except KeyboardInterrupt as exc:  # outside _main's own handler: as the secrets are taken or given back
        return _failed(f"goldgate: {how(exc)}", 143 if how(exc) != "interrupted" else 130)


def _main(argv: list[str] | None) -> int:
    _reopen_closed_std_fds()
    args = argparse.Namespace()
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:  # named with the usage of the command they were given to, not the top-level one
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            sub.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
        check_home(args)
        return int(args.func(args) or 0)
    except GoldgateError as exc:
        return _failed(f"goldgate: error: {one_line(str(exc))}")
    except BrokenPipeError:  # `goldgate ... | head`: the reader left; not an error of ours
        to_devnull(sys.stdout)
        to_devnull(sys.stderr)  # or it was stderr's reader (`2>&1 | head`)
        return 0
    except OSError as exc:  # the state dir or a file in it (or another path given): unwritable, full, not a directory
        where = f" ({exc.filename})" if exc.filename else ""
        return _failed(one_line(f"goldgate: error: {exc.strerror or exc}{where}; {_advice(args, exc)}"))
    except RecursionError:  # Path.mkdir(parents=True) recurses once per missing level: a path thousands deep
        return _failed("goldgate: error: a path is nested too deeply to create or read (thousands of levels); check "
                       "--home, GOLDGATE_HOME and the paths given")
    except KeyboardInterrupt as exc:  # 130 for Ctrl-C, 143 for SIGTERM: the codes a shell gives a process they end
        return _failed(f"goldgate: {how(exc)}", 143 if how(exc) != "interrupted" else 130)


def _failed(line: str, code: int = 1) -> int:
    """`line` on stderr, and the exit code: a failure stays one when stderr's reader has left (`2>&1 | head`)."""
    try:
        print(encodable(line, sys.stderr), file=sys.stderr, flush=True)
    except OSError:
        to_devnull(sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
