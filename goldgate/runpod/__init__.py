"""goldgate's RunPod clients: REST v2 control plane (`ControlPlaneClient`: endpoints, registry credentials,
catalog) and serverless data plane (`DataPlaneClient`), typed values, and one error hierarchy rooted at
`RunPodError`."""

from goldgate.runpod.control import DEFAULT_CONTROL_BASE, ControlPlaneClient
from goldgate.runpod.errors import (
    RunPodAuthError,
    RunPodError,
    RunPodNotFound,
    RunPodProtocolError,
    RunPodRateLimited,
    RunPodRejected,
    RunPodUnavailable,
)
from goldgate.runpod.jobs import (
    DEFAULT_DATA_BASE,
    JOB_STATUSES,
    TERMINAL_STATUSES,
    DataPlaneClient,
    Health,
    JobPolicy,
    JobStatus,
)
from goldgate.runpod.resources import (
    CLEAR,
    Clear,
    DiffEntry,
    Endpoint,
    EndpointConfig,
    EndpointPatch,
    GpuType,
    Registry,
    RegistryCredential,
    Release,
    ReleaseHistory,
    Rollout,
    Scaling,
    Worker,
    WorkerList,
)
from goldgate.runpod.transport import RetryPolicy

__all__ = [
    "CLEAR", "DEFAULT_CONTROL_BASE", "DEFAULT_DATA_BASE", "JOB_STATUSES", "TERMINAL_STATUSES",
    "Clear", "ControlPlaneClient", "DataPlaneClient", "DiffEntry", "Endpoint", "EndpointConfig", "EndpointPatch",
    "GpuType", "Health", "JobPolicy", "JobStatus", "Registry", "RegistryCredential", "Release", "ReleaseHistory",
    "RetryPolicy", "Rollout", "RunPodAuthError", "RunPodError", "RunPodNotFound", "RunPodProtocolError",
    "RunPodRateLimited", "RunPodRejected", "RunPodUnavailable", "Scaling", "Worker", "WorkerList",
]
