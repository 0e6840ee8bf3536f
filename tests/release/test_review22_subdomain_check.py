"""The cloud deploy asks Cloudflare for the account's workers.dev subdomain before it pins the image or runs
`pulumi up`: an account that never opened Workers & Pages has none, the Worker's upload fails with error 10063
there, and `pulumi up` failed halfway, after the bucket, database and endpoint were created.

Against the `pulumi` stand-in (tests/fixtures/release/pulumi_standin.py, which records every command line), the
RunPod emulator, and a Cloudflare stand-in (tests/fixtures/release/cloudflare_standin.py) the stack's
goldgate:cloudflareApiBase points at."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.release.cloudflare_standin import CloudflareStandIn
from fixtures.release.pulumi_standin import encrypt
from test_cloud_deployer import A, B, commands, deployer, emulator, make_project  # noqa: F401 -- emulator: a fixture

from goldgate.local.runpod.emulator import RunPodEmulator
from goldgate.release.deployers.cloud import CloudDeployFailed

ACCOUNT = "0" * 31 + "1"
CF_TOKEN = "cf-test-token-" + "x" * 20
ZONE = "f" * 32


@pytest.fixture
def cloudflare() -> Iterator[CloudflareStandIn]:
    with CloudflareStandIn(CF_TOKEN, ACCOUNT, subdomain="acme") as cf:
        yield cf


@pytest.fixture
def project(tmp_path: Path, emulator: RunPodEmulator, cloudflare: CloudflareStandIn,  # noqa: F811
            monkeypatch: pytest.MonkeyPatch) -> Path:
    """A prod stack on workers.dev whose Cloudflare token and API base are the stand-in's."""
    return make_project(tmp_path, emulator, monkeypatch,
                        config={"goldgate:cloudflareApiToken": {"secure": encrypt(CF_TOKEN)},
                                "goldgate:cloudflareApiBase": cloudflare.api_base},
                        cloud_account_id=ACCOUNT, public_base_url="https://goldgate-api-prod.acme.workers.dev")


def ran_up(project: Path) -> bool:
    return any("up" in argv for argv in commands(project))


def stack_file(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / "stacks" / "Pulumi.prod.yaml").read_text())["config"]


def edit_api(project: Path, **api: Any) -> None:
    path = project / "stacks" / "Pulumi.prod.yaml"
    doc = yaml.safe_load(path.read_text())
    target = doc["config"]["goldgate:spec"]["api"]
    for key, value in api.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_an_account_without_a_workers_dev_subdomain_is_refused_before_the_pin_and_before_pulumi_up(
        project: Path, cloudflare: CloudflareStandIn) -> None:
    cloudflare.subdomain = None
    said: list[str] = []
    with pytest.raises(CloudDeployFailed) as refused:
        deployer(project).deploy("prod", B, progress=said.append)
    message = str(refused.value)
    assert f"account {ACCOUNT} has no workers.dev subdomain" in message
    assert "Nothing was changed" in message and "Workers & Pages" in message and "deploy again" in message
    assert CF_TOKEN not in message and not any(CF_TOKEN in m for m in said)
    # Nothing changed: no pin, no up; the stack file still pins what it did.
    assert not ran_up(project)
    assert not any(argv[:2] == ["config", "set"] or "set" in argv[:3] for argv in commands(project))
    assert stack_file(project)["goldgate:spec"]["image"] == A
    asked = cloudflare.subdomain_requests()
    assert [(r.method, r.token_ok) for r in asked] == [("GET", True)]


def test_with_a_subdomain_the_deploy_goes_on_as_before(project: Path, cloudflare: CloudflareStandIn) -> None:
    said: list[str] = []
    result = deployer(project).deploy("prod", B, progress=said.append)
    assert result.after == B and result.rollout["percent_on_latest"] == 100
    assert ran_up(project) and stack_file(project)["goldgate:spec"]["image"] == B
    assert [(r.method, r.token_ok) for r in cloudflare.subdomain_requests()] == [("GET", True)]
    assert any("acme.workers.dev" in m for m in said)


@pytest.mark.parametrize("api", [
    {"custom_domain": "api.example.com", "zone_id": ZONE, "public_base_url": None},
    {"route": "api.example.com/*", "zone_id": ZONE, "public_base_url": None},
    {"custom_domain": "api.example.com", "zone_id": ZONE, "public_base_url": None, "keep_workers_dev": True},
], ids=["custom_domain", "route", "custom_domain_keeping_workers_dev"])
def test_a_stack_off_workers_dev_is_checked_too(project: Path, cloudflare: CloudflareStandIn,
                                                api: dict[str, Any]) -> None:
    """The Worker's upload itself fails with 10063 on an account without a subdomain (cloudflare/workers-sdk#14494),
    wherever the API is served."""
    edit_api(project, **api)
    cloudflare.subdomain = None
    with pytest.raises(CloudDeployFailed, match="no workers.dev subdomain"):
        deployer(project).deploy("prod", B, progress=lambda _m: None)
    assert not ran_up(project) and stack_file(project)["goldgate:spec"]["image"] == A
    cloudflare.subdomain = "acme"
    result = deployer(project).deploy("prod", B, progress=lambda _m: None)   # no workers.dev URL to compare
    assert result.after == B and ran_up(project)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("failure", ["503", "unreachable"])
def test_a_5xx_or_an_unreachable_api_does_not_block_the_deploy_but_says_it_could_not_check(
        project: Path, cloudflare: CloudflareStandIn, failure: str) -> None:
    if failure == "503":
        cloudflare.fail_status = 503
    else:
        path = project / "stacks" / "Pulumi.prod.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["config"]["goldgate:cloudflareApiBase"] = f"http://127.0.0.1:{_closed_port()}/client/v4"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    cloudflare.subdomain = None   # not what decides here: the answer never says it
    said: list[str] = []
    result = deployer(project).deploy("prod", B, progress=said.append)
    assert result.after == B and ran_up(project)
    could_not = [m for m in said if "could not check the workers.dev subdomain" in m]
    assert could_not and ACCOUNT in could_not[0] and "10063" in could_not[0]
    assert not any(CF_TOKEN in m for m in said)


def test_a_refused_token_is_left_to_pulumi_up_to_report(project: Path, cloudflare: CloudflareStandIn) -> None:
    cloudflare.api_token = "another-token"
    cloudflare.subdomain = None
    said: list[str] = []
    result = deployer(project).deploy("prod", B, progress=said.append)
    assert result.after == B and ran_up(project)
    assert [r.token_ok for r in cloudflare.subdomain_requests()] == [False]
    assert any("refused" in m and "goldgate:cloudflareApiToken" in m for m in said)
    assert not any(CF_TOKEN in m for m in said)


@pytest.mark.parametrize("url", ["https://goldgate-api-prod.acme-old.workers.dev",
                                 "https://goldgate-api-prod.<WORKERS_SUBDOMAIN>.workers.dev"],
                         ids=["another-subdomain", "the-shipped-placeholder"])
def test_a_public_base_url_at_another_workers_dev_host_is_refused_naming_the_one_cloudflare_serves(
        project: Path, cloudflare: CloudflareStandIn, url: str) -> None:
    # RunPod's webhooks go to api.public_base_url: at a host nothing answers, every job would stay in flight.
    edit_api(project, public_base_url=url)
    with pytest.raises(CloudDeployFailed) as refused:
        deployer(project).deploy("prod", B, progress=lambda _m: None)
    message = str(refused.value)
    assert "Set api.public_base_url to https://goldgate-api-prod.acme.workers.dev" in message
    assert "Nothing was changed" in message and "stacks/Pulumi.prod.yaml" in message
    assert not ran_up(project) and stack_file(project)["goldgate:spec"]["image"] == A


def test_the_served_host_in_other_case_or_with_its_port_is_the_same_address(project: Path,
                                                                          cloudflare: CloudflareStandIn) -> None:
    edit_api(project, public_base_url="https://Goldgate-API-prod.ACME.workers.dev:443")
    result = deployer(project).deploy("prod", B, progress=lambda _m: None)
    assert result.after == B and ran_up(project)


def test_another_worker_of_the_same_account_is_said_not_refused(project: Path, cloudflare: CloudflareStandIn) -> None:
    # a gateway Worker in front of the API (a service binding) is a setup some teams run
    edit_api(project, public_base_url="https://gateway.acme.workers.dev")
    said: list[str] = []
    result = deployer(project).deploy("prod", B, progress=said.append)
    assert result.after == B and ran_up(project)
    assert any("names gateway.acme.workers.dev, not goldgate-api-prod.acme.workers.dev" in m for m in said)
