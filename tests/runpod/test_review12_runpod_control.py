"""Review 12: the emulator's REST v2 validation errors name the fields that are wrong, not the good ones.

A part of the spec's allOf that fails leaves all its fields "unevaluated", so JSON Schema also reports every good
field of that part as unexpected: one bad `scaling` read '(body): ... ('gpu', 'name', 'scaling', 'type' were
unexpected)', sending an operator hunting for typos in fields that are right."""

from __future__ import annotations

from typing import Any

import httpx
from emulator_harness import API_KEY

CREATE = {"name": "review12", "type": "QUEUE", "image": "local/worker@sha256:" + "a" * 64,
          "gpu": {"pools": ["ADA_24"]}, "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}}


def _create(stack: Any, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{stack.emulator.api_base}/serverless", json=body,
                      headers={"Authorization": f"Bearer {API_KEY}"})


def test_a_bad_field_is_named_without_the_good_ones_beside_it(make_stack) -> None:
    stack = make_stack()
    bad_scaling = _create(stack, {**CREATE, "scaling": {"type": "QUEUE_DELAY", "value": 4}})
    assert bad_scaling.status_code == 422, bad_scaling.text
    errors = bad_scaling.json()["errors"]
    assert errors and all(e.startswith("scaling") for e in errors), errors
    # A field the spec does not know is still named, next to the other mistake, and only it.
    unknown = _create(stack, {**CREATE, "surprise": 1, "workers": {"min": 0, "max": -1}})
    assert unknown.status_code == 422, unknown.text
    errors = unknown.json()["errors"]
    assert any("workers.max" in e for e in errors), errors
    [unexpected] = [e for e in errors if "unexpected" in e]
    assert "'surprise'" in unexpected and "'name'" not in unexpected and "'gpu'" not in unexpected, errors
    # Alone, an unknown field is reported as before.
    alone = _create(stack, {**CREATE, "surprise": 1})
    assert alone.status_code == 422 and any("'surprise'" in e for e in alone.json()["errors"]), alone.text
