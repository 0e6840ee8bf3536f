"""The arguments of `goldgate client add|revoke|list`: a stack's named client tokens (docs/RUNBOOK.md, "Add or revoke a
client"); the command itself is in goldgate.commands.clients, imported only when it runs."""

from __future__ import annotations

import argparse
import os

from goldgate.commands import add_command, handler
from goldgate.commands.output import add_json_flag

COMMANDS = "goldgate.commands.clients"
ACTIONS = {"add": "make a client's token and print it once on stdout (nothing else there)",
           "revoke": "remove a client's token: it is answered 401 once applied",
           "list": "the stack's clients and when each token was made (never a token)"}


def register(sub: argparse._SubParsersAction) -> None:
    from goldgate.commands.release_args import TARGETS, _target

    parent = add_command(sub, COMMANDS, "client", "cmd_client",
                         "a stack's named client tokens: add one (its token printed once on stdout), revoke one, list "
                         "them")
    actions = parent.add_subparsers(dest="client_action", metavar="ACTION")
    actions.required = True
    for name, what in ACTIONS.items():
        p = actions.add_parser(name, help=what, description=what)
        # SUPPRESS: a --home given before the action (`goldgate client --home H add ...`) is kept
        p.add_argument("--home", default=argparse.SUPPRESS,
                       help="state directory (default: $GOLDGATE_HOME or ./.goldgate)")
        p.set_defaults(func=handler(COMMANDS, "cmd_client"))
        if name != "list":
            p.add_argument("name", help="the client's name: 1 to 32 lowercase letters, digits and '-', the first a "
                                        "letter (e.g. web-frontend)")
        p.add_argument("--stack", required=True, help="the stack the client calls (staging, prod)")
        p.add_argument("--target", type=_target, choices=TARGETS, default=os.environ.get("GOLDGATE_TARGET", "local"),
                       help="local (default: the token files under --home) or cloud (prints the pulumi commands that "
                            "do it, acting on nothing); env GOLDGATE_TARGET")
        if name == "list":
            add_json_flag(p)
