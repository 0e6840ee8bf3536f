"""The RunPod emulator's wire format (moto's "responses"): backend records -> the vendor's JSON.

Control-plane shapes follow the REST v2 OpenAPI schemas (tests validate them); data-plane and
webhook shapes follow RunPod's serverless docs."""

from __future__ import annotations

from typing import Any

from goldgate.local.runpod.backend import (
    GPU_CATALOG,
    EndpointRecord,
    JobRecord,
    RegistryRecord,
    RunPodBackend,
)


def problem(status: int, title: str, detail: str, errors: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return body


def endpoint(ep: EndpointRecord, data_base: str) -> dict[str, Any]:
    s = ep.settings
    base = f"{data_base}/{ep.id}"
    return {
        "id": ep.id, "name": ep.name, "type": "QUEUE",
        "requestUrls": {"run": f"{base}/run", "runSync": f"{base}/runsync", "status": f"{base}/status/{{job_id}}",
                        "stream": f"{base}/stream/{{job_id}}", "cancel": f"{base}/cancel/{{job_id}}",
                        "retry": f"{base}/retry/{{job_id}}", "purgeQueue": f"{base}/purge-queue",
                        "health": f"{base}/health"},
        "image": s["image"], "args": s.get("args", ""), "disk": s.get("disk", 20), "ports": list(s.get("ports") or []),
        "env": dict(s.get("env") or {}), "registry": s.get("registry"),
        "gpu": dict(s["gpu"]), "workers": dict(s["workers"]), "scaling": dict(s["scaling"]),
        "dataCenterIds": list(s.get("dataCenterIds") or []), "networkVolumes": list(s.get("networkVolumes") or []),
        "timeout": s["timeout"], "flashboot": s.get("flashboot", "OFF"), "createdAt": ep.created_at,
    }


def endpoints(eps: list[EndpointRecord], data_base: str) -> dict[str, Any]:
    return {"endpoints": [endpoint(ep, data_base) for ep in eps]}


def registry(record: RegistryRecord) -> dict[str, Any]:
    """The Registry schema: id and name only; the login is write-only."""
    return {"id": record.id, "name": record.name}


def registries(records: list[RegistryRecord]) -> dict[str, Any]:
    return {"registries": [registry(r) for r in records]}


def releases(backend: RunPodBackend, ep: EndpointRecord) -> dict[str, Any]:
    live = backend.live_workers(ep.id)
    return {
        "endpointVersion": ep.version,
        "rollout": rollout(backend, ep),
        "releases": [{"id": r.id, "version": r.version, "source": "MANUAL", "buildId": None,
                      "createdByUserId": None, "workerCount": sum(1 for w in live if w.version == r.version),
                      "createdAt": r.created_at, "diff": list(r.diff)}
                     for r in reversed(ep.releases)],
    }


def rollout(backend: RunPodBackend, ep: EndpointRecord) -> dict[str, Any]:
    live = backend.live_workers(ep.id)
    on_latest = sum(1 for w in live if w.version == ep.version)
    total = len(live)
    percent = 0 if total == 0 else (on_latest * 100) // total  # the spec: 0 when there are no workers
    return {"inProgress": on_latest < total, "workersOnLatest": on_latest, "workersTotal": total,
            "percentOnLatest": percent}


def workers(backend: RunPodBackend, ep: EndpointRecord, gpu_type: str) -> dict[str, Any]:
    live = [*backend.live_workers(ep.id), *backend.failed_start_workers(ep)]
    now = backend.clock()
    items = [{"id": w.id, "status": w.status, "isStale": w.version < ep.version, "version": w.version,
              "gpuCount": w.gpu_count, "image": w.image,
              "uptimeSeconds": max(0, int(now - w.started_mono)), "gpuTypeId": w.gpu_type or gpu_type,
              "dataCenterId": "LOCAL", "startedAt": w.started_at} for w in live]
    summary = {k: sum(1 for i in items if i["status"] == k.upper())
               for k in ("running", "idle", "initializing", "throttled", "unhealthy")}
    summary["total"] = len(items)
    return {"endpointVersion": ep.version, "summary": summary, "workers": items}


def gpu_types(availability: bool = False) -> dict[str, Any]:
    """The catalog; with `availability` (include=AVAILABILITY), each type's stock: every card is in stock in
    the emulator's one data center, LOCAL (the workers' dataCenterId)."""
    stock = {"availability": "HIGH", "dataCenters": [{"id": "LOCAL", "name": "Local emulator", "availability": "HIGH"}]}
    return {"gpus": [{"id": gid, "name": name, "pool": pool, "manufacturer": "NVIDIA", "memory": mem,
                      "secure": True, "community": True,
                      "price": {"secure": round(per_s * 3600 * 0.9, 2), "community": round(per_s * 3600 * 0.7, 2),
                                "serverless": round(per_s * 3600, 4)},
                      "maxCount": {"secure": 8, "community": 4}, **(stock if availability else {})}
                     for gid, name, pool, mem, per_s in GPU_CATALOG]}


def job_status(job: JobRecord) -> dict[str, Any]:
    """GET /status/{id}: RunPod's shape per state (times only once known; `error` only on failures)."""
    body: dict[str, Any] = {"id": job.id, "status": job.status}
    if job.delay_ms is not None:
        body["delayTime"] = job.delay_ms
    if job.execution_ms is not None:
        body["executionTime"] = job.execution_ms
    if job.worker_id:
        body["workerId"] = job.worker_id
    if job.retries:
        body["retries"] = job.retries
    if job.status == "COMPLETED":
        body["output"] = job.output
    elif job.status == "IN_PROGRESS" and job.progress is not None:
        body["output"] = job.progress
    elif job.error is not None:
        body["error"] = job.error
    return body


def job_stream(job: JobRecord, chunks: list[Any]) -> dict[str, Any]:
    """GET /stream/{id}: the job's status and the chunks not read before, each as {"output": chunk}."""
    return {"status": job.status, "stream": [{"output": chunk} for chunk in chunks]}


def job_accepted(job: JobRecord) -> dict[str, Any]:
    return {"id": job.id, "status": job.status}


def webhook_payload(job: JobRecord) -> dict[str, Any]:
    """What RunPod POSTs to a job's webhook when it finishes."""
    body: dict[str, Any] = {"id": job.id, "status": job.status, "delayTime": job.delay_ms or 0,
                            "executionTime": job.execution_ms or 0, "input": job.input}
    if job.status == "COMPLETED":
        body["output"] = job.output
    else:
        body["error"] = job.error if job.error is not None else job.status.lower().replace("_", " ")
    body["webhook"] = job.webhook
    return body
