"""Webhook delivery the way RunPod does it: POST the finished job, expect 200, retry up to
`webhook_attempts - 1` more times `webhook_retry_delay_s` apart, plus the injected faults
(duplicates, reordering, delays, lost attempts, lost webhooks).

Which statuses send one: COMPLETED and FAILED (documented by RunPod). CANCELLED and TIMED_OUT send
none by default: whether RunPod sends them is unverified, and assuming "none" is the safe side (an
operator settles those jobs with `goldgate recover`, one /status read). `EmulatorConfig.webhook_statuses`
switches them on to drill the other possibility."""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from goldgate.local.runpod.config import EmulatorConfig
from goldgate.local.runpod.eventlog import EventLog, job_context
from goldgate.local.runpod.faults import FaultPlan


@dataclass(frozen=True)
class DeliveryRecord:
    """One attempt, for drills and tests: outcome is 'ok', 'http <code>', 'error <type>', 'dropped' or
    'dropped-all'."""

    job_id: str
    status: str
    copy: int
    attempt: int
    outcome: str


@dataclass
class _Delivery:
    job_id: str
    url: str
    payload: dict[str, Any]
    copy: int
    attempt: int = 1
    drop_this: bool = False
    worker_image_tag: str | None = None  # the image that ran the job, for the delivery's log lines


# The delivery attempts `history` keeps, newest last: enough for any drill or test to read its own, and a stack that
# serves for days holds no more (a record per attempt, kept for the emulator's life, was a leak without end).
HISTORY_MAX = 1000

JSON_BODY = {"Content-Type": "application/json"}  # as httpx's json= sent it, and RunPod sends


def _encoded(payload: dict[str, Any]) -> bytes:
    """The payload as JSON with non-ASCII escaped: an input may hold a lone surrogate (a JS client's prompt cut
    mid-emoji is sent as "\\ud83d"), which no UTF-8 body can carry, and the webhook must still go. NaN is refused."""
    return json.dumps(payload, allow_nan=False).encode("ascii")


def redact_url(url: str) -> str:
    """Scheme, host and path only: the query carries the per-job signature and must not be logged."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class WebhookDispatcher:
    """A due-time queue served by a few sender threads; `send` never blocks the caller."""

    def __init__(self, config: EmulatorConfig, log: EventLog, senders: int = 4) -> None:
        self.config = config
        self.plan = FaultPlan(config.faults)
        self.log = log
        self._heap: list[tuple[float, int, _Delivery]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._stopped = False
        self._in_flight = 0
        self.history: list[DeliveryRecord] = []  # the newest HISTORY_MAX attempts, for drills and tests
        self._client = httpx.Client(timeout=config.webhook_timeout_s, follow_redirects=False,
                                    headers={"Content-Type": "application/json", "User-Agent": "RunPod-Webhook"})
        self._threads = [threading.Thread(target=self._serve, name=f"runpod-webhook-{i}", daemon=True)
                         for i in range(senders)]
        for t in self._threads:
            t.start()

    def send(self, job_id: str, url: str, payload: dict[str, Any], worker_image_tag: str | None = None) -> None:
        status = str(payload.get("status"))
        if self.plan.drop_all(job_id):
            self._record(DeliveryRecord(job_id, status, 0, 0, "dropped-all"))
            self.log.warning("webhook.dropped_all", runpod_job_id=job_id, status=status, url=redact_url(url),
                             **job_context(payload.get("input")), worker_image_tag=worker_image_tag,
                             reason="faults.drop_all_deliveries_rate: recovery must settle this job")
            return
        drop_first = self.plan.drop_first(job_id)
        now = time.monotonic()
        with self._cv:
            for copy in range(self.plan.copies()):
                d = _Delivery(job_id, url, payload, copy, 1, drop_first, worker_image_tag)
                heapq.heappush(self._heap, (now + self.plan.hold_s(job_id, copy), next(self._seq), d))
            self._cv.notify_all()

    def pending(self) -> int:
        with self._cv:
            return len(self._heap) + self._in_flight

    def drain(self, timeout_s: float) -> bool:
        """Wait until every delivery sent so far is settled (delivered or given up), at most `timeout_s`; True
        when none is left. Stopping calls it first, so a job that finished while the emulator was stopping
        still gets its webhook."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            while self._heap or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(min(remaining, 0.1))
        return True

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            dropped = len(self._heap)
            self._heap.clear()
            self._cv.notify_all()
        deadline = time.monotonic() + self.config.webhook_timeout_s + 1  # one budget, not one per sender
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self._client.close()
        if dropped:
            self.log.warning("webhook.discarded_on_stop", count=dropped)

    def _serve(self) -> None:
        while True:
            with self._cv:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cv.wait(None if not self._heap else max(0.0, self._heap[0][0] - time.monotonic()))
                if self._stopped:
                    return
                _, _, d = heapq.heappop(self._heap)
                self._in_flight += 1
            try:
                self._attempt(d)
            finally:
                with self._cv:
                    self._in_flight -= 1

    def _attempt(self, d: _Delivery) -> None:
        status = str(d.payload.get("status"))
        if d.drop_this and d.attempt == 1:
            outcome = "dropped"
        else:
            try:
                response = self._client.post(d.url, content=_encoded(d.payload), headers=JSON_BODY)
                outcome = "ok" if response.status_code == 200 else f"http {response.status_code}"
            except Exception as exc:  # noqa: BLE001 -- any failure is this attempt's, never the sender thread's end
                outcome = f"error {type(exc).__name__}"
        self._record(DeliveryRecord(d.job_id, status, d.copy, d.attempt, outcome))
        fields = {"runpod_job_id": d.job_id, **job_context(d.payload.get("input")), "worker_image_tag": d.worker_image_tag,
                  "status": status, "copy": d.copy, "attempt": d.attempt, "url": redact_url(d.url), "outcome": outcome}
        if outcome == "ok":
            self.log.info("webhook.delivered", **fields)
            return
        if d.attempt >= self.config.webhook_attempts:
            self.log.warning("webhook.gave_up", **fields)
            return
        self.log.warning("webhook.retry_scheduled", delay_s=self.config.webhook_retry_delay_s, **fields)
        d.attempt += 1
        with self._cv:
            due = time.monotonic() + self.config.webhook_retry_delay_s
            heapq.heappush(self._heap, (due, next(self._seq), d))
            self._cv.notify_all()

    def _record(self, record: DeliveryRecord) -> None:
        with self._cv:
            self.history.append(record)
            # A list trimmed from the front, not a deque: a drill reading it while a sender appends must not raise.
            if len(self.history) > HISTORY_MAX:
                del self.history[:len(self.history) - HISTORY_MAX]
