"""Subcommands of the `goldgate` CLI, one module per area (local, release, ops), each with an arguments module
(`local_args`, ...). The parser is built from the arguments modules alone; an area's module is imported only
when one of its commands runs."""

from __future__ import annotations

import argparse
import importlib
import unicodedata
from collections.abc import Callable


def handler(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """The command function `name` of `module`, imported when the command runs. Every `goldgate` process
    builds the whole parser (`--help`, `--version` and a usage error too), and the command modules import the
    HTTP client, the image library and the stack code: built from them, the parser cost each process a third
    of a second of CPU."""

    def run(args: argparse.Namespace) -> int:
        # Looked up as the command runs: a test's stand-in for a command function is the one called.
        return getattr(importlib.import_module(module), name)(args)

    run.__module__, run.__name__, run.__qualname__ = module, name, name
    return run


def add_command(sub: argparse._SubParsersAction, module: str, name: str, func: str,
                help_text: str) -> argparse.ArgumentParser:
    """The subcommand `name`, which runs `func` of `module`, with the --home every command takes."""
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--home", help="state directory (default: $GOLDGATE_HOME or ./.goldgate)")
    p.set_defaults(func=handler(module, func))
    return p


def path_to_create(text: str) -> str:
    """The type of an option naming a file or directory the command creates (`metrics --html`, `demo --out`). A
    name holding a control character (a newline pasted with it, an escape sequence) was created as given, a name no
    one can type or see whole; and `-`, which reads as stdout, became a file named `-` in the working directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty or blank; give a value")
    if text == "-":
        raise argparse.ArgumentTypeError("'-' is no stdout here: this writes files; name the path to create "
                                         "(--json prints the command's result on stdout)")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise argparse.ArgumentTypeError(f"{text[:100]!r} holds a control character (a newline, an escape "
                                         "sequence); name the path to create")
    return text
