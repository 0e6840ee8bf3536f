"""`goldgate client add|revoke|list`: a stack's named client tokens (service/clients.py). Locally each is a file under
the stack's secrets (goldgate/local/client_tokens.py), applied by `goldgate reload` as a rotated API token is;
on the cloud they are the stack's `goldgate:clientTokens` Pulumi secret, and these commands print the pulumi
commands that change it rather than act: a cloud stack's secrets are set with pulumi alone."""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from pathlib import Path
from typing import Any

from goldgate import spec as specs
from goldgate.commands.clients_args import register  # noqa: F401 -- the area's subcommands, listed here too
from goldgate.commands.output import emit, progress, say, table
from goldgate.errors import GoldgateError, SpecError
from goldgate.local import client_tokens
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

CONFIG_KEY = f"{specs.CONFIG_NAMESPACE}:clientTokens"


def _stack_dir(args: argparse.Namespace) -> StackDir:
    """The local stack's directory, for a stack the stacks file names (a typo is refused, not given a directory)."""
    platform = LocalPlatform(Path(args.home) if getattr(args, "home", None) else None)
    role = specs.load_local(args.stack, platform.stacks_file).role
    return StackDir(platform.home, args.stack, role)


def _apply(stack: str) -> str:
    """How a local stack takes a change of its clients: as it takes a rotated API token (docs/RUNBOOK.md), on PROD as
    on STAGING: a reload ends no job in flight, as a restart of PROD did (every client's)."""
    return (f"a running stack applies it with `goldgate reload {stack}` (no job stops, no ledger entry); a stopped one "
            f"at its next `goldgate up {stack}`")


def _cloud_stack(stack: str) -> str:
    if not specs._NAME.fullmatch(stack):
        raise SpecError(f"{stack[:40]!r} is not a stack name (2-41 lowercase letters, digits and dashes, first a "
                        "letter: staging or prod)")
    return stack


def cmd_client(args: argparse.Namespace) -> int:
    """`goldgate client add|revoke NAME` or `goldgate client list`."""
    # called by name, not through a table: tests/release/test_review15_fa_cli_options.py walks these calls to find
    # an option no handler reads
    if args.client_action == "add":
        return cmd_client_add(args)
    if args.client_action == "revoke":
        return cmd_client_revoke(args)
    return cmd_client_list(args)


def cmd_client_add(args: argparse.Namespace) -> int:
    name = client_tokens.check_name(args.name)
    if args.target == "cloud":
        stack = shlex.quote(_cloud_stack(args.stack))
        key = shlex.quote(f"{CONFIG_KEY}.{name}")
        say("# goldgate keeps no token of a cloud stack: set it with pulumi (the token stays off the command line)\n"
            'TOKEN="$(openssl rand -hex 32)"\n'
            f'printf %s "$TOKEN" | pulumi config set --secret --path {key} --stack {stack}\n'
            f"pulumi up --stack {stack}\n"
            '# then hand "$TOKEN" to the client, as its bearer token')
        return 0
    d = _stack_dir(args)
    token = client_tokens.add_client(d, name)
    say(token)
    # Redirected (`> file`, as the RUNBOOK does to keep it off the screen), the token is in that file, not above.
    where = "the line above" if sys.stdout.isatty() else "what this command wrote to its standard output"
    progress(f"client {name} added to stack {args.stack} ({client_tokens.clients_dir(d) / name}); its token is "
             f"{where}, shown once: hand it to the client. It is served once applied: {_apply(args.stack)}")
    return 0


def cmd_client_revoke(args: argparse.Namespace) -> int:
    name = client_tokens.check_name(args.name)
    if args.target == "cloud":
        stack = shlex.quote(_cloud_stack(args.stack))
        say(f"pulumi config rm --path {shlex.quote(f'{CONFIG_KEY}.{name}')} --stack {stack}\n"
            f"pulumi up --stack {stack}\n"
            f"# from then on client {name}'s token is answered 401 unauthorized")
        return 0
    d = _stack_dir(args)
    path = client_tokens.revoke_client(d, name)
    progress(f"client {name} revoked on stack {args.stack} ({path} removed); its token is answered 401 once "
             f"applied: {_apply(args.stack)}")
    return 0


def cmd_client_list(args: argparse.Namespace) -> int:
    if args.target == "cloud":
        return _list_cloud(args)
    d = _stack_dir(args)
    rows = [{"name": c.name, "written_at": _iso(c.written_at_s)} for c in client_tokens.list_clients(d)]
    emit(args, {"stack": args.stack, "clients": rows},
         lambda data: table(data["clients"], ["name", "written_at"]) if data["clients"] else
         f"stack {data['stack']} has no clients (`goldgate client add <name> --stack {data['stack']}`)")
    return 0


def _list_cloud(args: argparse.Namespace) -> int:
    """A cloud stack's client names, read from its stack file (where pulumi keeps them, each token encrypted)."""
    stack = _cloud_stack(args.stack)
    path = specs.STACKS_DIR / f"Pulumi.{stack}.yaml"
    doc: Any = specs.read_yaml(path)
    config = doc.get("config") if isinstance(doc, dict) else None
    clients = (config or {}).get(CONFIG_KEY) if isinstance(config, dict) else None
    if isinstance(clients, dict) and list(clients) == ["secure"]:  # `pulumi config set --secret` of the whole object
        raise GoldgateError(f"{path}: {CONFIG_KEY} is one encrypted object, whose client names only pulumi can read: "
                            f"set each client apart, `pulumi config set --secret --path '{CONFIG_KEY}.<name>' --stack "
                            f"{stack}`, so that each is revoked alone and listed here")
    if clients is not None and not isinstance(clients, dict):
        raise GoldgateError(f"{path}: {CONFIG_KEY} is not a mapping of client name to token: set each client with "
                            f"`pulumi config set --secret --path '{CONFIG_KEY}.<name>' --stack {stack}`")
    rows = [{"name": str(name), "written_at": None} for name in sorted(clients or {}, key=str)]
    emit(args, {"stack": stack, "clients": rows},
         lambda data: table(data["clients"], ["name"]) if data["clients"] else
         f"stack {stack} has no clients in {path}")
    return 0


def _iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
