"""RunPod serverless data plane (`{endpoint_base}/run`, `/status/{id}`, `/cancel/{id}`) over an
HttpTransport port."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from service.http import MAX_JSON_DEPTH, nested_deeper_than, without_lone_surrogates
from service.ports import HttpTransport, TransportError


class RunPodRefused(Exception):
    """RunPod answered, but not with success; `status` is its HTTP status (404 = unknown job)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"RunPod answered HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class RunPodUnavailable(Exception):
    """RunPod could not be reached or answered nonsense; try again later. `status` is its HTTP status when it
    answered one (a 5xx, or 429: rate limited, so the call was not taken), else None. The message is what an API
    client may be told; `logged` is the operator's text, which may name RunPod's endpoint URL (its endpoint id)."""

    def __init__(self, message: str, status: int | None = None, logged: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.logged = logged if logged is not None else message


# The signature of a webhook URL (`...?job=<id>&sig=<hex>`): it lets anyone post that job's outcome.
_WEBHOOK_SIGNATURE = re.compile(r"(?<=sig=)[0-9A-Fa-f]+")


def _masked(text: str, api_key: str) -> str:
    return _WEBHOOK_SIGNATURE.sub("[redacted]", text.replace(api_key, "[redacted]") if api_key else text)


def _detail(body: bytes, api_key: str) -> str:
    # Only the vendor's explanation (RFC 9457 detail/title or error), never our request. A peer may echo
    # our request back (key, webhook URL): they are masked before the text is cut, so no part is left at the cut.
    try:
        data = json.loads(body) if not nested_deeper_than(body, MAX_JSON_DEPTH) else None
        if isinstance(data, dict):
            for key in ("detail", "error", "title", "message"):
                if isinstance(data.get(key), str):
                    return _masked(data[key], api_key)[:300]
    except (ValueError, UnicodeDecodeError):
        pass
    return _masked(body[:65536].decode("utf-8", "replace"), api_key)[:200] or "(empty body)"


class HttpRunPodGateway:
    def __init__(self, transport: HttpTransport, endpoint_base: str, api_key: str, timeout_s: float = 10.0) -> None:
        self.transport = transport
        self.endpoint_base = endpoint_base.rstrip("/")
        self._headers = {"authorization": f"Bearer {api_key}", "content-type": "application/json",
                         "accept": "application/json"}
        self.timeout_s = timeout_s
        self._api_key = api_key

    async def _call(self, method: str, path: str, body: Mapping[str, Any] | None) -> Mapping[str, Any]:
        payload = json.dumps(body).encode() if body is not None else None
        try:
            reply = await self.transport.request(method, self.endpoint_base + path, self._headers, payload,
                                                 self.timeout_s)
        except TransportError as exc:
            # The endpoint's URL (with its id) goes to the log line only: this message reaches API clients (a 503's
            # body, a failed job's `error`), and a transport's error may quote the URL it was given.
            endpoint_id = self.endpoint_base.rsplit("/", 1)[-1]
            told = str(exc).replace(self.endpoint_base, "RunPod's endpoint")
            told = told.replace(endpoint_id, "<endpoint id>") if len(endpoint_id) >= 6 else told
            raise RunPodUnavailable(f"RunPod is unreachable: {told}",
                                    logged=f"RunPod at {self.endpoint_base} is unreachable: {exc}") from None
        if reply.status >= 300:
            # a peer may echo our request back: never let the key travel on into errors and logs
            detail = _detail(reply.body, self._api_key)
            if reply.status >= 500 or reply.status == 429:
                raise RunPodUnavailable(f"RunPod answered HTTP {reply.status}: {detail}", reply.status)
            raise RunPodRefused(reply.status, detail)
        if nested_deeper_than(reply.body, MAX_JSON_DEPTH):  # as a webhook's body: Pyodide's parser would overflow
            raise RunPodUnavailable(f"RunPod answered with JSON nested over {MAX_JSON_DEPTH} levels")
        try:
            # read as the webhook reads the same outcome: a lone \udXXX escape (a worker's error naming a file whose
            # name is not UTF-8) would fail every later hash, write and log of it
            data = without_lone_surrogates(json.loads(reply.body))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise RunPodUnavailable("RunPod answered with a body that is not JSON") from None
        if not isinstance(data, dict):
            raise RunPodUnavailable("RunPod answered with JSON that is not an object")
        return data

    async def run(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        data = await self._call("POST", "/run", body)
        if not isinstance(data.get("id"), str) or not data["id"]:
            raise RunPodUnavailable("RunPod /run answer has no job id")
        return data

    async def status(self, runpod_job_id: str) -> Mapping[str, Any]:
        return await self._call("GET", "/status/" + quote(runpod_job_id, safe=""), None)

    async def cancel(self, runpod_job_id: str) -> Mapping[str, Any]:
        """`POST /cancel/{id}`: RunPod stops the job (queued or running) and answers `{"id", "status"}`,
        the status being CANCELLED, or the one the job had already ended with."""
        return await self._call("POST", "/cancel/" + quote(runpod_job_id, safe=""), None)
