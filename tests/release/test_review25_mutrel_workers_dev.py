"""The cloud deploy's workers.dev check, in process: what Cloudflare's answer to GET .../workers/subdomain means
(goldgate.cloudflare.workers.account_subdomain), and what the deployer does with it and with the stack's
api.public_base_url (CloudDeployer._check_workers_dev), against a mocked Cloudflare API. The end-to-end deploys
are in test_review22_subdomain_check.py; these hold the bounds and branches it does not reach."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pulumi.automation import errors as auto_errors
from pulumi.automation._cmd import CommandResult

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.errors import CloudflareError
from goldgate.cloudflare.workers import account_subdomain
from goldgate.release.deployers import cloud
from goldgate.release.deployers.cloud import (
    CLOUDFLARE_API_BASE_KEY,
    CLOUDFLARE_TOKEN_KEY,
    CloudDeployer,
    CloudDeployFailed,
)
from goldgate.spec import CLOUDFLARE_API

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "cf-review25-token-0123456789"
SCRIPT = "goldgate-api-prod"
IMAGE = "registry.test/goldgate-worker@sha256:" + "b" * 64


def answering(status: int, body: dict[str, Any], seen: list[httpx.Request] | None = None
              ) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body)
    return answer


def no_subdomain(status: int) -> dict[str, Any]:
    return {"success": False, "result": None, "messages": [],
            "errors": [{"code": 10007, "message": "workers.api.error.script_not_found"}]}


def api(answer: Callable[[httpx.Request], httpx.Response]) -> CloudflareApi:
    return CloudflareApi(TOKEN, "https://api.test/client/v4", transport=httpx.MockTransport(answer), attempts=1)


# -- what the answer means ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [404, 400])
def test_error_10007_below_500_means_the_account_has_no_subdomain(status: int) -> None:
    with api(answering(status, no_subdomain(status))) as client:
        assert account_subdomain(client, ACCOUNT) is None


@pytest.mark.parametrize("status", [500, 503])
def test_error_10007_in_a_server_error_says_nothing_about_the_subdomain(status: int) -> None:
    # A 5xx is Cloudflare failing, whatever code it carries: refusing the deploy on it ("no subdomain") would be a
    # false refusal; the deployer says it could not check and goes on.
    with api(answering(status, no_subdomain(status))) as client, pytest.raises(CloudflareError):
        account_subdomain(client, ACCOUNT)


@pytest.mark.parametrize("name", ["", "   "])
def test_a_success_with_a_blank_subdomain_name_is_no_answer(name: str) -> None:
    body = {"success": True, "errors": [], "messages": [], "result": {"subdomain": name}}
    with api(answering(200, body)) as client, pytest.raises(CloudflareError) as failed:
        account_subdomain(client, ACCOUNT)
    assert "without a subdomain name" in str(failed.value)


# -- what the deployer does with it ---------------------------------------------------------------------------------

class _Config:
    def __init__(self, value: str) -> None:
        self.value = value


class _Stack:
    """What _check_workers_dev reads of a Pulumi stack: its config, a missing key raising as the CLI does."""

    def __init__(self, config: dict[str, str]) -> None:
        self.config = config

    def get_config(self, key: str) -> _Config:
        if key not in self.config:
            raise auto_errors.CommandError(CommandResult(stdout="", stderr=f"configuration key '{key}' not found",
                                                         code=255))
        return _Config(self.config[key])


def check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, public_base_url: str | None, subdomain: str = "acme",
          account: str = ACCOUNT, config: dict[str, str] | None = None) -> tuple[list[str], list[httpx.Request]]:
    """Run the check of stack prod against a Cloudflare answering `subdomain`: (progress lines, requests made)."""
    seen: list[httpx.Request] = []
    answer = answering(200, {"success": True, "errors": [], "messages": [], "result": {"subdomain": subdomain}}, seen)
    real = CloudflareApi

    def mocked(token: str, base: str, **kw: Any) -> CloudflareApi:
        return real(token, base, transport=httpx.MockTransport(answer), **kw)

    monkeypatch.setattr(cloud, "CloudflareApi", mocked)
    deployer = CloudDeployer(cloud.CloudSettings(project_dir=tmp_path), control_client=lambda *_a: None)
    spec = SimpleNamespace(cloud=SimpleNamespace(cloudflare_account_id=account),
                           api=SimpleNamespace(script_name=SCRIPT, public_base_url=public_base_url))
    monkeypatch.setattr(deployer, "spec", lambda _stack: spec)
    said: list[str] = []
    stack = _Stack({CLOUDFLARE_TOKEN_KEY: TOKEN, CLOUDFLARE_API_BASE_KEY: "https://api.test/client/v4"}
                   if config is None else config)
    deployer._check_workers_dev(stack, "prod", IMAGE, said.append)
    return said, seen


def test_the_address_cloudflare_serves_the_worker_at_passes_without_a_word_of_doubt(monkeypatch, tmp_path) -> None:
    said, seen = check(monkeypatch, tmp_path, public_base_url=f"https://{SCRIPT}.acme.workers.dev")
    assert len(seen) == 1
    assert not any("must pass them on" in line or "not check" in line for line in said), said


def test_a_subdomain_cloudflare_spells_in_capitals_is_the_same_address(monkeypatch, tmp_path) -> None:
    # Host names are case-blind (urlsplit gives them in lower case): the Worker's own address is no other Worker's.
    said, _ = check(monkeypatch, tmp_path, public_base_url=f"https://{SCRIPT}.acme.workers.dev", subdomain="Acme")
    assert not any("must pass them on" in line for line in said), said
    said, _ = check(monkeypatch, tmp_path, public_base_url="https://gateway.acme.workers.dev", subdomain="Acme")
    assert any("must pass them on" in line for line in said), said   # another Worker of the account: said, not refused


def test_another_accounts_workers_dev_address_is_refused_even_written_with_a_final_dot(monkeypatch, tmp_path) -> None:
    with pytest.raises(CloudDeployFailed) as refused:
        check(monkeypatch, tmp_path, public_base_url=f"https://{SCRIPT}.other.workers.dev./")
    assert f"{SCRIPT}.other.workers.dev" in str(refused.value)
    assert f"https://{SCRIPT}.acme.workers.dev" in str(refused.value)


def test_an_unset_api_base_asks_cloudflares_own_api(monkeypatch, tmp_path) -> None:
    # The program takes an unset goldgate:cloudflareApiBase as Cloudflare's API; so does the check, rather than
    # skipping it as if the config could not be used.
    said, seen = check(monkeypatch, tmp_path, public_base_url=f"https://{SCRIPT}.acme.workers.dev",
                       config={CLOUDFLARE_TOKEN_KEY: TOKEN})
    assert [str(r.url) for r in seen] == [f"{CLOUDFLARE_API}/accounts/{ACCOUNT}/workers/subdomain"]
    assert not any("not checked" in line for line in said), said


def test_a_placeholder_account_id_is_not_asked_about(monkeypatch, tmp_path) -> None:
    # The program refuses a placeholder before declaring anything: asking Cloudflare about it only adds noise.
    said, seen = check(monkeypatch, tmp_path, public_base_url=f"https://{SCRIPT}.acme.workers.dev",
                       account="<your-cloudflare-account-id>")
    assert seen == [] and said == []
