"""R2's S3 host for a jurisdictional bucket, as the operators' R2 client names it.

A bucket created in a jurisdiction (storage.jurisdiction: eu or fedramp) is reachable over S3 only at
`<account>.<jurisdiction>.r2.cloudflarestorage.com` (R2's data-location docs); the account's default host answers
NoSuchBucket for it. The stack's GPU workers were given the right host (infra/components/storage.py), but the
operators' client (`goldgate.cloudflare.r2.r2_endpoint`, the default of `dr-drill --cloud`) knew the default host
only, so the drill of an EU stack exported D1 and then failed to store the backup."""

from __future__ import annotations

import pytest

from goldgate.cloudflare.r2 import R2Admin, r2_endpoint
from infra.components.storage import r2_endpoint_url

ACCOUNT = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("jurisdiction", "host"), [
    ("default", f"{ACCOUNT}.r2.cloudflarestorage.com"),
    ("eu", f"{ACCOUNT}.eu.r2.cloudflarestorage.com"),
    ("fedramp", f"{ACCOUNT}.fedramp.r2.cloudflarestorage.com"),
])
def test_the_operators_r2_client_names_the_host_of_the_buckets_jurisdiction(jurisdiction, host):
    assert r2_endpoint(ACCOUNT, jurisdiction) == f"https://{host}"
    # One rule: the drill's client and the GPU workers (R2_ENDPOINT_URL) reach the same bucket.
    assert r2_endpoint(ACCOUNT, jurisdiction) == r2_endpoint_url(ACCOUNT, jurisdiction)
    admin = R2Admin(r2_endpoint(ACCOUNT, jurisdiction), "results", "key-id", "secret")
    assert admin._s3.meta.endpoint_url == f"https://{host}"


def test_without_a_jurisdiction_the_default_host_is_kept():
    assert r2_endpoint(ACCOUNT) == f"https://{ACCOUNT}.r2.cloudflarestorage.com"
