"""`pulumi up --stack staging|prod`: the running stack's config -> infra.program.run (see docs/CLOUD.md)."""

import sys
from pathlib import Path

import pulumi

try:
    import infra  # noqa: F401  (installed with goldgate; fall back to the checkout when run from it)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from goldgate.errors import GoldgateError
from infra.program import read_config, run

try:
    spec, secrets, settings = read_config(pulumi.get_stack())
    run(spec, secrets, settings)
except GoldgateError as exc:  # a bad stack file or a guardrail: the message, not a traceback
    raise pulumi.RunError(str(exc)) from None
