"""Review 30 mutation audit (mut30): `prod-r2-protected` judges PROD's R2 buckets only. PROD's other resources that
Pulumi may replace (the API Worker's script on each deploy, its custom domain, the RunPod endpoint) carry no
protect, and a policy that judged them as buckets would refuse every `pulumi up` of PROD, naming a "bucket" that is
a Worker script."""

from __future__ import annotations

import pytest
from test_infra_policies import resource_args, violations

from infra.policies import PROD_R2_PROTECTED


@pytest.mark.parametrize(("resource_type", "name"), [
    ("cloudflare:index/workersScript:WorkersScript", "goldgate-prod-api"),
    ("cloudflare:index/workersCustomDomain:WorkersCustomDomain", "api.example.com"),
])
def test_prods_other_unprotected_resources_are_no_bucket_to_protect(stacks_dir, resource_type: str,
                                                                     name: str) -> None:
    args = resource_args("prod", resource_type, {"name": name}, stacks_dir, protect=False)
    assert violations(PROD_R2_PROTECTED, args) == []
