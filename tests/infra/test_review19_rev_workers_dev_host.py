"""A stack whose API lives at workers.dev keeps it on, however its public_base_url spells the host.

Every stack now declares its WorkersScriptSubdomain, `enabled` only while the API is (or is kept) at workers.dev.
The program told that from the URL's text ending in `.workers.dev`, while the spec takes a host in any case and
with a port: a stack at `https://goldgate-api-staging.acct.Workers.Dev` or `...workers.dev:443`, serving there
before the upgrade, had its only address turned off by the first `pulumi up` after it, and every client and
RunPod webhook lost the API. Hosts are read as DNS reads them (case-blind, without the port)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from infra_harness import filled_stack_file, use_cloud
from test_review19_infra_workers_dev_off import ZONE, _doc, _subdomain

from goldgate.errors import SpecError
from infra.components.api import check_exposure
from infra.program import read_config
from infra.worker_bundle import WorkerBundle

ROUTE = "api-staging.example.com/*"


def _enabled(doc: dict[str, Any], stacks_dir: Path, tmp_path: Path, bundle: WorkerBundle) -> bool:
    return _subdomain(doc, stacks_dir, tmp_path, bundle)[1]["enabled"]


def _shipped_host() -> str:
    return filled_stack_file("staging")["config"]["goldgate:spec"]["api"]["public_base_url"].split("://", 1)[1]


@pytest.mark.parametrize("spell", [
    lambda host: f"https://{host}",                         # as shipped: on, as before
    lambda host: f"https://{host.removesuffix('.workers.dev')}.Workers.Dev",
    lambda host: f"https://{host.upper()}/",
    lambda host: f"https://{host}:443",
], ids=["as-shipped", "capitals", "all-capitals", "port"])
def test_an_api_on_workers_dev_keeps_it_enabled_however_the_url_spells_the_host(spell, stacks_dir, tmp_path,
                                                                                 bundle):
    host = _shipped_host().rstrip("/")
    assert host.endswith(".workers.dev")
    assert _enabled(_doc(public_base_url=spell(host)), stacks_dir, tmp_path, bundle) is True


def test_keep_workers_dev_beside_a_route_with_a_capitalised_workers_dev_address_is_refused():
    # The API's address is still workers.dev, as with the lower-case spelling: the setting keeps nothing.
    host = _shipped_host().rstrip("/").upper()
    use_cloud("staging", _doc(route=ROUTE, zone_id=ZONE, public_base_url=f"https://{host}", keep_workers_dev=True))
    with pytest.raises(SpecError, match="keeps it on workers.dev anyway: remove keep_workers_dev"):
        check_exposure(read_config("staging")[0], warn=False)
