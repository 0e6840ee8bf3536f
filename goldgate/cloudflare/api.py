"""The Cloudflare v4 API envelope: bearer auth, `{"success", "errors", "messages", "result"}` -> result or error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import httpx

from goldgate.cloudflare.errors import CloudflareAuthError, CloudflareError, CloudflareNotFound

DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"


class CloudflareApi:
    """One httpx.Client speaking the v4 API. `call` returns the envelope's `result`."""

    def __init__(self, api_token: str, base_url: str = DEFAULT_API_BASE, *, timeout_s: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not api_token:
            raise CloudflareAuthError("no Cloudflare API token given: pass one with D1 Edit (and R2) permission "
                                      "(CLOUDFLARE_API_TOKEN, as wrangler uses)")
        self.base_url = base_url.rstrip("/")
        self._token = api_token
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport,
                                    headers={"Authorization": f"Bearer {api_token}",
                                             "User-Agent": "goldgate-cloudflare/0.1"})

    def __repr__(self) -> str:  # never show the token
        return f"CloudflareApi({self.base_url})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        where = f"{method} {path}"
        try:
            response = self._client.request(method, path, json=json, params=params)
        except httpx.TransportError as exc:
            raise CloudflareError(self._scrub(f"{where}: cannot reach the Cloudflare API at {self.base_url} "
                                              f"({type(exc).__name__}: {exc}); check the network and retry")) from None
        try:
            body = response.json()
        except ValueError:
            advice = ("Cloudflare's side failed (an error page, not the API's JSON): retry in a few minutes"
                      if response.status_code >= 500 else "check the API base URL")
            raise CloudflareError(f"{where} answered {response.status_code} with a body that is not JSON: {advice}",
                                  status=response.status_code) from None
        if not isinstance(body, dict):
            raise CloudflareError(f"{where} answered with unexpected JSON ({type(body).__name__})",
                                  status=response.status_code)
        if response.status_code >= 400 or body.get("success") is False:
            raise self._error(where, response.status_code, body)
        return body.get("result")

    def _error(self, where: str, status: int, body: dict[str, Any]) -> CloudflareError:
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        codes = tuple(int(e["code"]) for e in errors if isinstance(e, dict) and isinstance(e.get("code"), int))
        said = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors[:5])
        said = self._scrub(said or f"HTTP {status}")
        if status in (401, 403):
            return CloudflareAuthError(f"{where} -> {status} ({said}): the API token is wrong or lacks the D1 Edit "
                                       "permission on this account", status=status, codes=codes)
        if status == 404:
            return CloudflareNotFound(f"{where} -> 404 ({said}): check the account id and database id",
                                      status=status, codes=codes)
        return CloudflareError(f"{where} -> {status} ({said})", status=status, codes=codes)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***")
