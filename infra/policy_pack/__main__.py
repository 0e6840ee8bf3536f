"""The goldgate-guardrails policy pack. Only this file builds the PolicyPack (constructing one starts a server)."""

import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack

try:
    import infra  # noqa: F401  (installed with goldgate; fall back to the checkout when run from it)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from infra.policies import POLICIES

PolicyPack(name="goldgate-guardrails", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
