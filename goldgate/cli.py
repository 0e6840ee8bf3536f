"""The `goldgate` command line: parses arguments, runs one command, turns errors into one line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from goldgate.errors import GoldgateError

# Each module registers its subcommands: `register(subparsers)`; a command's `func(args) -> int`.
COMMAND_MODULES = ("goldgate.commands.local", "goldgate.commands.release", "goldgate.commands.ops")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="goldgate",
        description="Ship ComfyUI on RunPod serverless + Cloudflare to production: "
                    "build once, golden-test on STAGING, promote the same digest to PROD, roll back.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GoldgateError as exc:
        print(f"goldgate: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `goldgate ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the state dir or a file in it: unwritable, full, or not a directory
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"goldgate: error: {exc.strerror or exc}{where}; check that the state dir (--home, GOLDGATE_HOME) "
              "is a writable directory with free space", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("goldgate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
