"""StackSpec's cloud fields: a value Cloudflare, RunPod or the deployed API Worker would refuse is refused on load,
on one line naming the stack, the field and the rule, with the value shown shortened."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError

DIGEST = "registry.example.com/your-org/goldgate-worker@sha256:" + "a" * 64
ZONE = "0123456789abcdef0123456789abcdef"


def cloud_doc(stack: str = "staging") -> dict[str, Any]:
    doc = yaml.safe_load((specs.STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]["goldgate:spec"]
    doc = copy.deepcopy(doc)
    doc["image"] = DIGEST
    return doc


def set_field(doc: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def refusal(path: tuple[str, ...], value: object, stack: str = "staging", **api: Any) -> str:
    doc = cloud_doc(stack)
    doc["api"].update(api)
    set_field(doc, path, value)
    with pytest.raises(SpecError) as err:
        specs.from_pulumi_config(stack, doc)
    message = str(err.value)
    field = "goldgate:spec." + ".".join(path)
    assert message.startswith(f"Pulumi config of stack {stack}: {field}: "), message
    assert "\n" not in message and len(message) < 600, message
    return message


def loads(path: tuple[str, ...], value: object, **api: Any) -> specs.StackSpec:
    doc = cloud_doc()
    doc["api"].update(api)
    set_field(doc, path, value)
    return specs.from_pulumi_config("staging", doc)


# -- api.custom_domain: the bare hostname of a Workers Custom Domain --------------------------------------------

@pytest.mark.parametrize(("value", "rule"), [
    ("https://api.example.com/", "without scheme, port or path"),
    ("api.example.com/v1", "without scheme, port or path"),
    ("api.example.com:8443", "without scheme, port or path"),
    ("//api.example.com", "without scheme, port or path"),
    ("api..example.com", "is not a hostname"),
    ("-api.example.com", "is not a hostname"),
    ("api_gw.example.com", "is not a hostname"),
    ("*.example.com", "is not a hostname"),
    ("api.example.com.", "is not a hostname"),
    ("localhost", "is not a hostname"),
    ("a" * 64 + ".example.com", "is not a hostname"),
    (".".join(["abcdefghi"] * 26) + ".com", "is not a hostname"),  # 264 characters: over DNS's 253
])
def test_a_custom_domain_that_is_not_a_bare_hostname_is_refused(value: str, rule: str) -> None:
    message = refusal(("api", "custom_domain"), value, zone_id=ZONE)
    assert f"{specs.show(value)} " in message and rule in message


@pytest.mark.parametrize("value", ["api.example.com", "API.Example.COM", "xn--bcher-kva.example.co.uk",
                                   "goldgate-api.<YOUR_DOMAIN>"])
def test_a_bare_custom_domain_loads(value: str) -> None:
    assert loads(("api", "custom_domain"), value, zone_id=ZONE).api.custom_domain == value


# -- api.route: a Workers route pattern, as Cloudflare documents them ----------------------------------------------

@pytest.mark.parametrize(("value", "rule"), [
    ("ftp://api.example.com/*", "may begin with http:// or https:// only"),
    ("wss://api.example.com/*", "may begin with http:// or https:// only"),
    ("https://https://api.example.com/*", "is not a hostname"),
    ("api.example.com/?foo=*", "may not contain query parameters"),
    ("https://example.com/?anything", "may not contain query parameters"),
    ("api.example.com/*.jpg", "only at the end of the path"),
    ("api.example.com/v*/jobs", "only at the end of the path"),
    ("api.*.example.com/*", "only at the start of the host"),
    ("api.example.com*", "only at the start of the host"),
    ("*/*", "must name the zone's host"),
    ("*", "must name the zone's host"),
    ("/jobs/*", "must name the zone's host"),
    ("api example.com/*", "is not a hostname"),
    ("api.example.com:8443/*", "is not a hostname"),
])
def test_a_route_pattern_cloudflare_would_refuse_is_refused(value: str, rule: str) -> None:
    message = refusal(("api", "route"), value, zone_id=ZONE)
    assert f"{specs.show(value)} is not a Workers route pattern" in message and rule in message


@pytest.mark.parametrize("value", ["api.example.com/*", "https://*.example.com/images/*", "*example.com/*",
                                   "example.com", "https://example.com/path*", "http://example.com/",
                                   "*.example.com/", "api.example.com/v1/Jobs/*", "api.<YOUR_DOMAIN>/*"])
def test_a_documented_route_pattern_loads(value: str) -> None:
    assert loads(("api", "route"), value, zone_id=ZONE).api.route == value


@pytest.mark.parametrize("value", ["example.com", "0123456789ABCDEF0123456789ABCDEF", "0" * 31, "<zone>"])
def test_a_zone_id_that_is_not_one_is_refused(value: str) -> None:
    message = refusal(("api", "zone_id"), value, route="api.example.com/*")
    assert f"{specs.show(value)} is not a Cloudflare zone id" in message


# -- base URLs: absolute https:// URLs (plain http only to this machine, as infra allows) -------------------------

BAD_BASE_URLS = [
    ("api.example.com", "no scheme"),
    ("//api.example.com/v2", "no scheme"),
    ("http://api.example.com", "plain http:// is allowed only to this machine"),
    ("http://10.0.0.5:8080/v2", "plain http:// is allowed only to this machine"),
    ("ftp://api.example.com", "the scheme must be https://"),
    ("https://", "no host"),
    ("https:///v2", "no host"),
    ("https://api.example.com/v2?key=x", "query or fragment"),
    ("https://api.example.com/#top", "query or fragment"),
    ("https://api.example.com/?", "query or fragment"),
    ("https://api.example.com/my base", "whitespace"),
    (" https://api.example.com", "whitespace"),
    ("https://user:pw@api.example.com/v2", "user name or password"),
    ("https://api..example.com/v2", "is not a hostname"),
    ("https://[::1/v2", "is not a URL"),
    ("https://api.example.com:99999/v2", "is not a URL"),
]


@pytest.mark.parametrize("where", [("api", "public_base_url"), ("cloud", "runpod_api_base"),
                                   ("cloud", "runpod_endpoint_base")])
@pytest.mark.parametrize(("value", "rule"), BAD_BASE_URLS)
def test_a_base_url_that_is_not_an_absolute_https_url_is_refused(where: tuple[str, str], value: str,
                                                                 rule: str) -> None:
    message = refusal(where, value)
    assert f"{specs.show_url(value)} is not an absolute https:// URL" in message and rule in message


@pytest.mark.parametrize("where", [("api", "public_base_url"), ("cloud", "runpod_api_base"),
                                   ("cloud", "runpod_endpoint_base")])
@pytest.mark.parametrize("value", ["https://api.runpod.ai/v2", "https://api.example.com:8443/base/",
                                   "http://127.0.0.1:8080/v2", "http://localhost:1", "http://[::1]:9/v2",
                                   "https://goldgate-api-staging.<WORKERS_SUBDOMAIN>.workers.dev"])
def test_an_https_or_loopback_base_url_loads(where: tuple[str, str], value: str) -> None:
    if where == ("api", "public_base_url") and urlsplit(value).path.strip("/"):
        return  # the API's own address has no path: see below
    spec = loads(where, value)
    assert getattr(spec.api if where[0] == "api" else spec.cloud, where[1]) == value


@pytest.mark.parametrize("value", ["https://api.example.com/api", "https://api.example.com/v1/",
                                   "https://goldgate-api-staging.example.workers.dev/goldgate"])
def test_a_public_base_url_with_a_path_is_refused(value: str) -> None:
    # The Worker answers /api/... and /healthz at its host's root, whatever this says: with a path, every RunPod
    # webhook (<base>/api/runpod/webhook) and client call would reach a path the API does not serve.
    message = refusal(("api", "public_base_url"), value)
    assert f"{specs.show(value)} is not" in message and "path" in message


@pytest.mark.parametrize("value", ["https://api.example.com", "https://api.example.com/", "https://api.example.com:8443"])
def test_a_public_base_url_without_a_path_loads(value: str) -> None:
    assert loads(("api", "public_base_url"), value).api.public_base_url == value


# -- location hints: the values R2 and D1 document ----------------------------------------------------------------

@pytest.mark.parametrize(("where", "value"), [
    (("storage", "location"), "us-east-1"), (("storage", "location"), "europe"), (("storage", "location"), "eu"),
    (("database", "location_hint"), "eu"), (("database", "location_hint"), "auto"),
    (("database", "location_hint"), "weur "),
])
def test_a_location_hint_cloudflare_does_not_know_is_refused(where: tuple[str, str], value: str) -> None:
    message = refusal(where, value)
    assert f"{specs.show(value)} is not " in message and "wnam, enam, weur, eeur, apac, oc" in message


@pytest.mark.parametrize("value", ["wnam", "enam", "weur", "eeur", "apac", "oc"])
def test_every_documented_location_hint_loads(value: str) -> None:
    spec = loads(("storage", "location"), value)
    assert spec.storage.location == value
    assert loads(("database", "location_hint"), value).database.location_hint == value


@pytest.mark.parametrize("value", [["us-tx-3 "], ["https://runpod.io/US-TX-3"], ["US_TX_3"]])
def test_a_data_center_id_that_is_not_one_is_refused(value: list[str]) -> None:
    message = refusal(("endpoint", "data_center_ids"), value)
    assert "is not a RunPod data center id" in message and specs.show(value[0]) in message


def test_data_center_ids_load() -> None:
    assert loads(("endpoint", "data_center_ids"), ["US-TX-3", "EU-RO-1"]).endpoint.data_center_ids == (
        "US-TX-3", "EU-RO-1")


# -- every text field: no control characters, nothing oversized ---------------------------------------------------

TEXT_FIELDS = [("api", "custom_domain"), ("api", "route"), ("api", "public_base_url"), ("api", "zone_id"),
               ("cloud", "runpod_api_base"), ("cloud", "runpod_endpoint_base"), ("storage", "location"),
               ("database", "location_hint"), ("endpoint", "cost_gpu_type"), ("endpoint", "network_volume_id")]


@pytest.mark.parametrize("where", TEXT_FIELDS)
@pytest.mark.parametrize("control", ["\n", "\r", "\x00", "\x1b", "\x7f", "\u202e", "\u2028"])
def test_a_control_character_is_refused_in_any_text_field(where: tuple[str, str], control: str) -> None:
    value = f"https://api.example.com/{control}x" if "url" in where[1] or "base" in where[1] else f"ab{control}cd"
    message = refusal(where, value, zone_id=ZONE)
    assert f"{specs.show(value)} contains a control character" in message


@pytest.mark.parametrize("where", [("endpoint", "gpu_pools"), ("endpoint", "data_center_ids")])
def test_a_control_character_is_refused_in_a_list_of_text(where: tuple[str, str]) -> None:
    message = refusal(where, ["ADA_24\r\nX-Injected: 1"])
    assert "contains a control character" in message


@pytest.mark.parametrize("where", TEXT_FIELDS)
def test_an_oversized_value_is_refused_and_shown_shortened(where: tuple[str, str]) -> None:
    value = "https://" + "a" * 5000 + ".example.com" if "url" in where[1] or "base" in where[1] else "a" * 5000
    message = refusal(where, value, zone_id=ZONE)
    assert f"{specs.show(value)} is {len(value):,} characters long" in message and "at most 1,024" in message
    assert value not in message


def test_the_stack_file_path_and_field_are_named_when_loading_a_stack_file(tmp_path: Path) -> None:
    doc = yaml.safe_load((specs.STACKS_DIR / "Pulumi.prod.yaml").read_text())
    doc["config"]["goldgate:spec"]["api"]["custom_domain"] = "https://api.example.com/"
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match=r"Pulumi\.prod\.yaml: goldgate:spec\.api\.custom_domain: 'https://api"):
        specs.load_pulumi("prod", tmp_path)


def test_a_local_stack_is_held_to_the_same_rules(tmp_path: Path) -> None:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"]["staging"]["api"]["public_base_url"] = "http://api.example.com"
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match=r"stacks\.staging\.api\.public_base_url: 'http://api\.example\.com' is not an "
                                        r"absolute https:// URL"):
        specs.load_local("staging", path)


def test_the_shipped_stack_files_load_unchanged() -> None:
    for stack in ("staging", "prod"):
        assert specs.load_pulumi(stack).name == stack
        assert specs.load_local(stack).name == stack


@pytest.mark.parametrize(("env", "rule"), [
    ({"UPSTREAM_URL": "http://127.0.0.1:8188\r\nX-Injected: 1"},
     "UPSTREAM_URL: the value contains a control character (U+000D at position 21)"),
    ({"EXTRA_ROOTS": "a\x1bb"}, "EXTRA_ROOTS: the value contains a control character (U+001B at position 1)"),
    ({"FOO\n": "x"}, "'FOO\\n' is not a valid environment variable name"),
    ({"LONG": "a" * 5000}, "LONG: the value is 5,000 characters long; at most 1,024 are accepted"),
])
def test_the_worker_env_is_held_to_the_text_rules(env: dict[str, str], rule: str) -> None:
    # endpoint.env reaches RunPod's API and the worker's environment as it is.
    message = refusal(("endpoint", "env"), env)
    assert message.startswith(f"Pulumi config of stack staging: goldgate:spec.endpoint.env: {rule}"), message
    assert "a" * 2000 not in message


@pytest.mark.parametrize(("value", "rule"), [("2025-02-30", "not a calendar date"), ("2025-13-01", "not a calendar date"),
                                             ("2999-01-01", "in the future")])
def test_a_compatibility_date_cloudflare_would_refuse_is_refused(value: str, rule: str) -> None:
    # Cloudflare refuses the Worker upload itself, after `pulumi up` has created the bucket, database and endpoint.
    message = refusal(("api", "compatibility_date"), value)
    assert "goldgate:spec.api.compatibility_date" in message and value in message and rule in message


def test_a_past_compatibility_date_loads() -> None:
    assert loads(("api", "compatibility_date"), "2024-02-29").api.compatibility_date == "2024-02-29"
