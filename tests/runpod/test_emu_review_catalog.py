"""GET /v2/catalog/gpus takes its query as REST v2 documents it: availability is asked for with
include=AVAILABILITY and a product, the availability filters are valid only with it (400), a malformed value
is a 422, and the answer carries the availability it asked for."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from emulator_harness import API_KEY

from goldgate.local.runpod.openapi import component, schema_errors


def _http(stack: Any) -> httpx.Client:
    return httpx.Client(base_url=stack.emulator.base_url, headers={"Authorization": f"Bearer {API_KEY}"})


@pytest.mark.parametrize("query, status, words", [
    ("product=SERVERLESS", 400, ("product", "include=AVAILABILITY")),
    ("include=AVAILABILITY", 400, ("product",)),
    ("cudaVersions=12.8", 400, ("cudaVersions", "include=AVAILABILITY")),
    ("minCudaVersion=12", 400, ("minCudaVersion", "include=AVAILABILITY")),
    ("countryCodes=FR", 400, ("countryCodes", "include=AVAILABILITY")),
    ("include=AVAILABILITY&product=SERVERLESS&cudaVersions=12.8&minCudaVersion=12", 400,
     ("cudaVersions", "minCudaVersion")),
    ("include=STOCK&product=SERVERLESS", 422, ("include",)),
    ("include=AVAILABILITY&product=GPU", 422, ("product",)),
    ("include=AVAILABILITY&product=SERVERLESS&cudaVersions=12", 422, ("cudaVersions",)),
    ("include=AVAILABILITY&product=SERVERLESS&countryCodes=fr", 422, ("countryCodes",)),
])
def test_misused_catalog_queries_are_refused_as_documented(make_stack, query: str, status: int,
                                                           words: tuple[str, ...]) -> None:
    with _http(make_stack()) as http:
        response = http.get(f"/v2/catalog/gpus?{query}")
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert schema_errors(component("ErrorResponse"), body) == []
    text = body["detail"] + " ".join(body.get("errors") or [])
    assert all(w in text for w in words), body


def test_availability_is_in_the_answer_only_when_asked_for(make_stack) -> None:
    with _http(make_stack()) as http:
        plain = http.get("/v2/catalog/gpus")
        asked = http.get("/v2/catalog/gpus", params={"include": "AVAILABILITY", "product": "SERVERLESS",
                                                     "minCudaVersion": "12", "countryCodes": "FR,DE"})
    assert plain.status_code == 200 and asked.status_code == 200, asked.text
    for response in (plain, asked):
        assert schema_errors(component("ListGpuTypesResponse"), response.json()) == []
    assert not any("availability" in g or "dataCenters" in g for g in plain.json()["gpus"])
    assert all(g["availability"] in ("NONE", "LOW", "MEDIUM", "HIGH") for g in asked.json()["gpus"])
    assert [g["id"] for g in asked.json()["gpus"]] == [g["id"] for g in plain.json()["gpus"]]
