"""Switching an API from workers.dev to a custom domain, and api.public_base_url beside api.custom_domain. The
custom domain is the API's address for new jobs (RunPod's webhooks, the result URLs status hands out).

- Switching a stack from workers.dev to a custom domain, as docs/CLOUD.md told (delete the public_base_url line,
  set custom_domain), turned workers.dev off at once: every job sent before the switch had been given a webhook URL
  there, so each of their webhooks was lost and the jobs sat in flight until recovered by hand. `api.keep_workers_dev`
  now keeps workers.dev serving beside the domain for the switch, and `pulumi up` says until when. It is an explicit
  choice: workers.dev is a second address, outside the zone's WAF and Access rules, so a stale public_base_url line
  does not turn it on.
- A public_base_url on any other host was ignored without a word, though its operator may be handing it to
  clients: now named in one warning line (with the way to keep workers.dev, when it names it). Neither refuses (the
  API works, at the custom domain). The same host in both is no warning."""

from __future__ import annotations

import pulumi
import pytest
from infra_harness import filled_stack_file, use_cloud
from test_infra_program import _settings

from goldgate.errors import SpecError
from infra.components.api import check_exposure
from infra.program import read_config, run

DOMAIN = "api-staging.example.com"
ZONE = "0123456789abcdef0123456789abcdef"
SUBDOMAIN = "workersScriptSubdomain:WorkersScriptSubdomain"


def _up(base_url: str | None, stacks_dir, tmp_path, bundle, monkeypatch, **api) -> tuple[list[str], object]:
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    doc["api"].update(custom_domain=DOMAIN, zone_id=ZONE, public_base_url=base_url, **api)
    doc["api"] = {k: v for k, v in doc["api"].items() if v is not None}
    cloud = use_cloud("staging", doc)
    warned: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *a, **kw: warned.append(message))

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config("staging")
        return run(spec, secrets, _settings(stacks_dir, tmp_path), bundle).api.script.id

    program()
    # each warning once (the component checks the exposure again, silently)
    return [m for m in warned if "public_base_url" in m or "keep_workers_dev" in m], cloud


def _webhook_base(cloud) -> str:
    (value,) = [b["text"] for b in cloud.one("workersScript:WorkersScript").inputs["bindings"]
                if b["name"] == "PUBLIC_BASE_URL"]
    return value


@pytest.mark.parametrize("base_url", [None, f"https://{DOMAIN}"])
def test_keep_workers_dev_beside_a_new_custom_domain_keeps_serving_the_jobs_sent_before(
        base_url, stacks_dir, tmp_path, bundle, monkeypatch):
    (message,), cloud = _up(base_url, stacks_dir, tmp_path, bundle, monkeypatch, keep_workers_dev=True)
    assert cloud.one(SUBDOMAIN).inputs["enabled"] is True  # the old jobs' webhooks still land
    assert cloud.one("workersCustomDomain:WorkersCustomDomain").inputs["hostname"] == DOMAIN
    assert _webhook_base(cloud) == f"https://{DOMAIN}"  # new jobs are given the custom domain
    assert "keeps serving" in message and f"https://{DOMAIN}" in message and "goldgate stuck" in message
    assert "WAF" in message and "\n" not in message


def test_a_stale_workers_dev_line_does_not_turn_workers_dev_on(stacks_dir, tmp_path, bundle, monkeypatch):
    old = "https://goldgate-api-staging.team.workers.dev"
    (message,), cloud = _up(old, stacks_dir, tmp_path, bundle, monkeypatch)
    assert cloud.one(SUBDOMAIN).inputs["enabled"] is False  # declared off: its delete changes nothing
    assert old in message and "is not used" in message and "api.keep_workers_dev: true" in message


def test_keep_workers_dev_without_a_custom_domain_is_refused_saying_why(stacks_dir, tmp_path, bundle):
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    doc["api"]["keep_workers_dev"] = True
    use_cloud("staging", doc)
    spec, _, _ = read_config("staging")
    with pytest.raises(SpecError, match=r"keep_workers_dev .* without custom_domain .*: remove keep_workers_dev"):
        check_exposure(spec)


def test_without_the_line_workers_dev_is_off_and_nothing_is_said(stacks_dir, tmp_path, bundle, monkeypatch):
    warned, cloud = _up(None, stacks_dir, tmp_path, bundle, monkeypatch)
    assert not warned
    assert cloud.one(SUBDOMAIN).inputs["enabled"] is False  # declared off: its delete changes nothing


@pytest.mark.parametrize("base_url", ["https://api.elsewhere.example.org",
                                      "https://another-script.team.workers.dev"])  # not where this Worker is
def test_a_public_base_url_on_another_host_is_named_as_unused(base_url, stacks_dir, tmp_path, bundle,
                                                              monkeypatch):
    (message,), cloud = _up(base_url, stacks_dir, tmp_path, bundle, monkeypatch)
    assert base_url in message and "is not used" in message and f"https://{DOMAIN}" in message
    assert cloud.one(SUBDOMAIN).inputs["enabled"] is False  # declared off: its delete changes nothing


@pytest.mark.parametrize("base_url", [f"https://{DOMAIN}", f"https://{DOMAIN.upper()}:443/"])
def test_a_public_base_url_naming_the_custom_domain_is_no_warning(base_url, stacks_dir, tmp_path, bundle,
                                                                   monkeypatch):
    warned, cloud = _up(base_url, stacks_dir, tmp_path, bundle, monkeypatch)
    assert not warned
    assert cloud.one(SUBDOMAIN).inputs["enabled"] is False  # declared off: its delete changes nothing
