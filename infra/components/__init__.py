"""One ComponentResource per cohesive unit: Storage (R2 + D1), GpuEndpoint (RunPod), Api (the Worker)."""

from infra.components.api import Api, ApiArgs
from infra.components.gpu import GpuEndpoint, GpuEndpointArgs
from infra.components.storage import Storage, StorageArgs

__all__ = ["Api", "ApiArgs", "GpuEndpoint", "GpuEndpointArgs", "Storage", "StorageArgs"]
