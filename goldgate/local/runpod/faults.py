"""Deterministic fault decisions: which job gets which injected fault is a function of the seed alone."""

from __future__ import annotations

import hashlib

from goldgate.local.runpod.config import FaultConfig


def draw(seed: int, what: str, job_id: str, n: int = 0) -> float:
    """A uniform number in [0, 1) fixed by (seed, what, job id, n): stable across runs and threads."""
    digest = hashlib.sha256(f"{seed}\x00{what}\x00{job_id}\x00{n}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class FaultPlan:
    """Answers 'does this job get fault X?' for one FaultConfig."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config

    def _hit(self, what: str, job_id: str, rate: float, n: int = 0) -> bool:
        return rate > 0 and draw(self.config.seed, what, job_id, n) < rate

    def fail(self, job_id: str) -> bool:
        return self._hit("failed", job_id, self.config.failed_rate)

    def crash(self, job_id: str) -> bool:
        return self._hit("crash", job_id, self.config.worker_crash_rate)

    def drop_all(self, job_id: str) -> bool:
        return self._hit("drop-all", job_id, self.config.drop_all_deliveries_rate)

    def drop_first(self, job_id: str) -> bool:
        return self._hit("drop-first", job_id, self.config.drop_first_delivery_rate)

    def copies(self) -> int:
        return self.config.duplicate_deliveries

    def hold_s(self, job_id: str, copy: int) -> float:
        """Extra time before a delivery copy's first attempt: the delay fault plus the reorder jitter."""
        hold = 0.0
        if self.config.delivery_delay_s > 0 and self._hit("delay", job_id, self.config.delivery_delay_rate):
            hold += self.config.delivery_delay_s
        if self.config.reorder:
            hold += draw(self.config.seed, "reorder", job_id, copy) * self.config.reorder_window_s
        return hold
