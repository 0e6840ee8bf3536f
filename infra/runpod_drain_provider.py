"""`pulumi destroy` stops, before it deletes anything, while the stack's endpoint still has jobs queued or running.

A dynamic resource with nothing to create: its delete reads the endpoint's `/health`. It depends on every other
resource of the stack, so a destroy deletes it first and alone. Deleting the endpoint itself would make RunPod
cancel those jobs, and by the time the endpoint's own delete ran, the API Worker (whose webhook records each
outcome) and the R2 token (the workers' uploads) would already be gone: nothing would be left to finish them for.
An endpoint that no longer exists has nothing in flight, so its 404 lets the destroy go on, but only once the control
plane lists endpoints without it (`confirm_gone`): a moved or retired data plane answers 404 to every path, while the
endpoint may still be running jobs.

Pulumi pickles the provider: it holds no state, and builds its client from the inputs each call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi.dynamic as dyn

from goldgate.runpod import ControlPlaneClient, DataPlaneClient, RunPodError, RunPodNotFound
from infra.runpod_provider import confirm_gone

IN_FLIGHT = {"inQueue": "queued", "inProgress": "running"}  # /health `jobs` counters -> what the operator sees
# api_base (the control plane's root) and endpoint_id prove a 404 from /health; stacks older than them lack both.
INPUTS = ("stack", "endpoint_base", "api_key", "api_base", "endpoint_id")
SECRET_OUTPUTS = ["api_key"]


class JobsInFlight(RunPodError):
    """The endpoint still has jobs queued or running: destroying the stack now would cancel them."""


def in_flight(jobs: Mapping[str, Any]) -> dict[str, int]:
    """The non-zero in-flight counters of a /health `jobs` object, by what the operator calls them."""
    counts = {word: int(jobs.get(key) or 0) for key, word in IN_FLIGHT.items()}
    return {word: n for word, n in counts.items() if n > 0}


class DrainCheckProvider(dyn.ResourceProvider):
    """Create, update and read keep the inputs (no call to RunPod); delete refuses while jobs are in flight."""

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        return dyn.CreateResult(id_=f"{props['stack']}-drain-check", outs=_outs(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        # A rotated key must reach the state (delete reads with it); nothing here is ever worth a replacement.
        changed = [k for k in INPUTS if olds.get(k) != news.get(k)]
        return dyn.DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        return dyn.UpdateResult(outs=_outs(news))

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        return dyn.ReadResult(id_=id_, outs=_outs(props))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        base, stack = props.get("endpoint_base"), props.get("stack")
        if not base or not props.get("api_key"):
            raise RunPodError(f"stack {stack}: the drain check's endpoint_base and api_key are unknown, so it cannot "
                              "tell whether jobs are in flight: run `pulumi up` once, then destroy again")
        try:
            with DataPlaneClient.for_endpoint_base(props["api_key"], base) as endpoint:
                health = endpoint.health()
        except RunPodNotFound as exc:
            prove_gone(props, exc)  # gone already (RunPod lists it no more): no job of it can be cancelled
            return
        except RunPodError as exc:
            raise RunPodError(f"stack {stack}: cannot read {base}/health to check for jobs in flight ({exc}); nothing "
                              "was deleted: destroy again once RunPod answers", status=exc.status) from None
        busy = in_flight(health.jobs)
        if busy:
            raise JobsInFlight(refusal(str(stack), str(base), busy))


def prove_gone(props: Mapping[str, Any], not_found: RunPodNotFound) -> None:
    """Return only if the control plane lists the account's endpoints without this one; else refuse, naming why."""
    stack, base, endpoint_id = props.get("stack"), props.get("endpoint_base"), props.get("endpoint_id")
    unproven = (f"stack {stack}: {base}/health answered 404, but a moved or retired RunPod data plane answers 404 "
                "to every path while the endpoint may still run jobs")
    if not props.get("api_base") or not endpoint_id:
        raise RunPodError(f"{unproven}, and this drain check predates the inputs that tell which (api_base, "
                          "endpoint_id). Nothing was deleted: run `pulumi up` once, then destroy again",
                          status=not_found.status) from None
    try:
        with ControlPlaneClient(props["api_key"], base_url=props["api_base"]) as rp:
            confirm_gone(lambda: [e.id for e in rp.list_endpoints()], str(endpoint_id), "endpoint", props,
                         then="destroy")
    except RunPodError as exc:
        raise RunPodError(f"{unproven} ({exc}). Nothing was deleted: if RunPod moved its data plane, set "
                          "goldgate:spec.cloud.runpod_endpoint_base and run `pulumi up`, then destroy again",
                          status=exc.status) from None


def refusal(stack: str, base: str, busy: Mapping[str, int]) -> str:
    counts = " and ".join(f"{n} job{'s' if n != 1 else ''} {word}" for word, n in busy.items())
    return (f"stack {stack}: endpoint {base} still has {counts}; deleting it would make RunPod cancel them, with "
            "no Worker left to record their results. Nothing was deleted. Stop sending jobs to this stack, wait "
            f"until `GET {base}/health` shows no job queued or running (a job ends within the endpoint's execution "
            f"timeout), then destroy again. To give the jobs up instead: `POST {base}/purge-queue`, and "
            f"`POST {base}/cancel/<job id>` for each running one, then destroy (docs/CLOUD.md, \"Tearing a stack "
            "down\")")


def _outs(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: props.get(k) for k in INPUTS}


class DrainCheck(dyn.Resource, module="runpod", name="DrainCheck"):
    """Stops `pulumi destroy` while the stack's endpoint has jobs in flight; declare it depending on every other
    resource of the stack, so that a destroy deletes it first."""

    def __init__(self, name: str, *, stack: str, endpoint_base: pulumi.Input[str], api_key: pulumi.Input[str],
                 api_base: str, endpoint_id: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None) -> None:
        props = {"stack": stack, "endpoint_base": endpoint_base, "api_key": pulumi.Output.secret(api_key),
                 "api_base": api_base, "endpoint_id": endpoint_id}
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS))
        super().__init__(DrainCheckProvider(), name, props, opts)
