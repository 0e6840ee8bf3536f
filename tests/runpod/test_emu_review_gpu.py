"""The emulator's GPU selection follows REST v2's documented rules (CreateEndpointGpuConfig,
UpdateEndpointGpuConfig, BaseEndpointGpuConfig), so a body RunPod refuses is refused here too."""

from __future__ import annotations

from typing import Any

import httpx
from emulator_harness import API_KEY

from goldgate.local.runpod.openapi import component, schema_errors

IMG = "local/worker@sha256:" + "1" * 64
CREATE = {"name": "gpu-rules", "type": "QUEUE", "image": IMG, "gpu": {"pools": ["ADA_24"], "count": 1},
          "workers": {"min": 0, "max": 1}, "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}}


def _http(stack: Any) -> httpx.Client:
    return httpx.Client(base_url=stack.emulator.base_url, headers={"Authorization": f"Bearer {API_KEY}"})


def _create(http: httpx.Client, gpu: dict[str, Any]) -> httpx.Response:
    return http.post("/v2/serverless", json={**CREATE, "gpu": gpu})


def _refused(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert schema_errors(component("ErrorResponse"), response.json()) == []
    assert all(w in response.json()["detail"] for w in words), response.json()


def test_a_cuda_version_set_beside_a_floor_is_refused_on_create_and_patch(make_stack) -> None:
    stack = make_stack()
    with _http(stack) as http:
        _refused(_create(http, {"pools": ["ADA_24"], "allowedCudaVersions": ["12.8"], "minCudaVersion": "12.1"}),
                 "allowedCudaVersions", "minCudaVersion")
        # an explicit empty set states no constraint and may accompany a floor
        floor = _create(http, {"pools": ["ADA_24"], "allowedCudaVersions": [], "minCudaVersion": "12.1"})
        assert floor.status_code == 201, floor.text
        eid = floor.json()["id"]
        # setting a set does not clear the floor the endpoint carries: the two together are refused ...
        _refused(http.patch(f"/v2/serverless/{eid}", json={"gpu": {"allowedCudaVersions": ["12.8"]}}),
                 "allowedCudaVersions", "minCudaVersion")
        assert http.get(f"/v2/serverless/{eid}").json()["gpu"]["allowedCudaVersions"] == []
        # ... unless the same patch clears the floor ("" clears it; the endpoint then reports null)
        both = http.patch(f"/v2/serverless/{eid}", json={"gpu": {"allowedCudaVersions": ["12.8"], "minCudaVersion": ""}})
        assert both.status_code == 200, both.text
        assert both.json()["gpu"]["allowedCudaVersions"] == ["12.8"]
        assert both.json()["gpu"]["minCudaVersion"] is None


def test_an_empty_min_cuda_version_clears_the_floor(make_stack) -> None:
    stack = make_stack()
    with _http(stack) as http:
        eid = _create(http, {"pools": ["ADA_24"], "minCudaVersion": "12.4"}).json()["id"]
        cleared = http.patch(f"/v2/serverless/{eid}", json={"gpu": {"minCudaVersion": ""}})
        assert cleared.status_code == 200, cleared.text
        assert cleared.json()["gpu"]["minCudaVersion"] is None
        assert schema_errors(component("Endpoint"), cleared.json()) == []
        assert http.get(f"/v2/serverless/{eid}").json()["gpu"]["minCudaVersion"] is None


def test_excluded_types_must_be_gpu_types_of_the_chosen_pools(make_stack) -> None:
    stack = make_stack()
    with _http(stack) as http:
        catalog = http.get("/v2/catalog/gpus").json()["gpus"]
        ada_24 = [g["id"] for g in catalog if g["pool"] == "ADA_24"]
        elsewhere = next(g["id"] for g in catalog if g["pool"] not in ("ADA_24", None))
        assert len(ada_24) >= 2
        # a card of another pool (or a typo) would be a filter that does nothing: RunPod refuses it by name
        _refused(_create(http, {"pools": ["ADA_24"], "excludedTypes": [elsewhere]}), elsewhere)
        _refused(_create(http, {"pools": ["ADA_24"], "excludedTypes": ["NVIDIA GeForce RTX 4009"]}), "RTX 4009")
        # excluding every card of the chosen pools leaves nothing to place a worker on
        _refused(_create(http, {"pools": ["ADA_24"], "excludedTypes": ada_24}), "ADA_24")
        # surrounding whitespace is trimmed: the same card
        ok = _create(http, {"pools": ["ADA_24"], "excludedTypes": [f" {ada_24[0]} "]})
        assert ok.status_code == 201, ok.text
        assert ok.json()["gpu"]["excludedTypes"] == [ada_24[0]]
        eid = ok.json()["id"]
        _refused(http.patch(f"/v2/serverless/{eid}", json={"gpu": {"pools": ["ADA_24"], "excludedTypes": [elsewhere]}}),
                 elsewhere)
        assert http.get(f"/v2/serverless/{eid}").json()["gpu"]["excludedTypes"] == [ada_24[0]]


def test_patching_pools_without_exclusions_clears_them(make_stack) -> None:
    stack = make_stack()
    with _http(stack) as http:
        l4 = "NVIDIA L4"
        created = _create(http, {"pools": ["ADA_24"], "excludedTypes": [l4]})
        assert created.status_code == 201, created.text
        eid = created.json()["id"]
        # a patch that leaves pools alone leaves the exclusions alone
        kept = http.patch(f"/v2/serverless/{eid}", json={"gpu": {"count": 2}})
        assert kept.json()["gpu"]["excludedTypes"] == [l4] and kept.json()["gpu"]["count"] == 2
        # pools and exclusions are one selection: new pools without excludedTypes replace both
        widened = http.patch(f"/v2/serverless/{eid}", json={"gpu": {"pools": ["ADA_24", "AMPERE_24"]}})
        assert widened.status_code == 200, widened.text
        assert widened.json()["gpu"]["pools"] == ["ADA_24", "AMPERE_24"]
        assert not widened.json()["gpu"].get("excludedTypes")
        assert not http.get(f"/v2/serverless/{eid}").json()["gpu"].get("excludedTypes")


def test_the_gpu_catalog_puts_each_card_in_its_serverless_pool(make_stack) -> None:
    stack = make_stack()
    pools = {g.id: g.pool for g in stack.control.list_gpu_types()}
    # RunPod's serverless pools: H100 is ADA_80_PRO, HOPPER_141 is the H200's (141 GB)
    assert pools["NVIDIA H100 80GB HBM3"] == "ADA_80_PRO"
    assert pools.get("NVIDIA H200", "HOPPER_141") == "HOPPER_141"
    assert pools["NVIDIA L4"] == "ADA_24" and pools["NVIDIA GeForce RTX 4090"] == "ADA_24"
