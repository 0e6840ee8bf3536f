"""Every name a stack's resources get, derived from the StackSpec in one place.

Logical names (Pulumi URNs) carry the stack name so two stacks never collide even in one
project; physical names (what Cloudflare and RunPod see) come from the spec, whose files
the guardrails check for overlap across stacks."""

from __future__ import annotations

from dataclasses import dataclass

from goldgate.spec import StackSpec


@dataclass(frozen=True)
class StackNames:
    """Logical (`*_urn_name`) and physical names for one stack."""

    stack: str
    endpoint: str
    bucket: str
    backup_bucket: str
    database: str
    script: str
    r2_token: str
    backup_r2_token: str
    registry_credential: str

    @classmethod
    def of(cls, spec: StackSpec) -> StackNames:
        physical = spec.resource_names()
        return cls(stack=spec.name, endpoint=physical["endpoint"], bucket=physical["bucket"],
                   backup_bucket=physical["backup_bucket"], database=physical["database"], script=physical["script"],
                   r2_token=f"goldgate-{spec.name}-r2-{physical['bucket']}",
                   backup_r2_token=f"goldgate-{spec.name}-r2-{physical['backup_bucket']}",
                   registry_credential=f"{physical['endpoint']}-registry")

    def logical(self, what: str) -> str:
        """The Pulumi resource name for `what` (e.g. 'results', 'db'): '<stack>-<what>'."""
        return f"{self.stack}-{what}"

    def physical(self) -> dict[str, str]:
        """Every physical name this stack claims, by kind (what the cross-stack guardrail compares).

        `registry_credential` is the prefix of a managed credential's name (RunPod's gets a suffix)."""
        return {"endpoint": self.endpoint, "bucket": self.bucket, "backup_bucket": self.backup_bucket,
                "database": self.database, "script": self.script, "r2_token": self.r2_token,
                "backup_r2_token": self.backup_r2_token, "registry_credential": self.registry_credential}
