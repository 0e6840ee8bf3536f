"""A destroy that gets a 404 for the endpoint forgets nothing it cannot prove gone: a moved or retired RunPod API
answers 404 to every path, and a `pulumi destroy` that took that for "already deleted" would drop the endpoint from
the state while RunPod keeps it (with its workers_min GPU workers, billed) where no stack knows of it."""

from __future__ import annotations

import pytest
from runpod_harness import API_KEY
from test_infra_runpod_provider import declared

from goldgate.runpod import RunPodError
from infra.runpod_provider import RunPodEndpointProvider


def test_a_delete_against_a_control_plane_that_404s_everything_fails_instead_of_forgetting(runpod, stub):
    stub.handler.status = 404
    with pytest.raises(RunPodError, match="not reporting it gone") as failed:
        RunPodEndpointProvider().delete("ep0123456789ab", {**declared(runpod), "api_base": stub.base_url})
    assert "run the same `pulumi` command again" in str(failed.value) and API_KEY not in str(failed.value)


def test_a_delete_of_an_endpoint_runpod_no_longer_lists_succeeds(runpod):
    provider = RunPodEndpointProvider()
    endpoint = provider.create(declared(runpod))
    with runpod.control() as rp:
        rp.delete_endpoint(endpoint.id)  # deleted outside Pulumi
    provider.delete(endpoint.id, endpoint.outs)
