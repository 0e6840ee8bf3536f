"""A refused token or a 404 from the Cloudflare API names what the call it refused needs: the D1, R2 or
Workers permission, the database, bucket or Worker. The client serves all three areas (backups, the
checklist's probes, the deploy's workers.dev check), and every refusal used to blame D1 Edit and a database id."""

from __future__ import annotations

import httpx
import pytest

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.errors import CloudflareAuthError, CloudflareNotFound

TOKEN = "cf-review22-token-0123456789"
ACCOUNT = "0123456789abcdef0123456789abcdef"


def api(status: int) -> CloudflareApi:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        return httpx.Response(status, json={"success": False, "errors": [{"code": 10000, "message": "refused"}],
                                            "messages": [], "result": None})
    return CloudflareApi(TOKEN, "https://api.test/client/v4", transport=httpx.MockTransport(answer), attempts=1)


@pytest.mark.parametrize(("path", "permission", "other"), [
    (f"/accounts/{ACCOUNT}/d1/database/abc/query", "D1 Edit", "R2"),
    (f"/accounts/{ACCOUNT}/r2/buckets/results", "Workers R2 Storage Edit", "D1"),
    (f"/accounts/{ACCOUNT}/workers/subdomain", "Workers Scripts Edit", "D1"),
])
def test_a_refused_token_names_the_permission_of_the_area_it_called(path, permission, other):
    with api(403) as client, pytest.raises(CloudflareAuthError) as refused:
        client.call("GET", path)
    assert f"lacks the {permission} permission" in str(refused.value)
    assert other not in str(refused.value).partition("->")[2]
    assert TOKEN not in str(refused.value)


@pytest.mark.parametrize(("path", "names"), [
    (f"/accounts/{ACCOUNT}/d1/database/abc", "database id"),
    (f"/accounts/{ACCOUNT}/r2/buckets/results", "bucket name"),
    (f"/accounts/{ACCOUNT}/workers/scripts/api", "Worker name"),
])
def test_a_404_names_the_identifier_of_the_area_it_called(path, names):
    with api(404) as client, pytest.raises(CloudflareNotFound) as missing:
        client.call("GET", path)
    assert f"check the account id and {names}" in str(missing.value)


def test_a_call_outside_the_known_areas_blames_no_particular_permission():
    with api(403) as client, pytest.raises(CloudflareAuthError) as refused:
        client.call("GET", "/user/tokens/verify")
    assert "D1" not in str(refused.value) and "lacks the needed permission" in str(refused.value)
