"""The account's workers.dev subdomain, read before a deploy.

A Cloudflare account has no workers.dev subdomain until Workers & Pages is opened once in the dashboard (or
one is created through the API). On such an account a Worker's upload fails with error 10063, whether or not
the Worker is served on workers.dev (cloudflare/workers-sdk#14494, where wrangler began asking before a
Worker's first upload), so a stack's first `pulumi up` failed halfway, after the bucket, database and
endpoint were made; the cloud deployer asks first.

What GET /accounts/{account_id}/workers/subdomain answers, from public text:
- with a subdomain: 200, the v4 envelope with `result: {"subdomain": "<name>"}` (Cloudflare's API reference,
  Workers > Subdomains > Get Subdomain);
- without one: error code 10007 ("not found"), which is the code wrangler takes for "no subdomain yet"
  (cloudflare/workers-sdk, getWorkersDevSubdomain), quoted from Cloudflare as a 404 with
  `{"result": null, "success": false, "errors": [{"code": 10007, "message":
  "workers.api.error.script_not_found"}]}` (cloudflare/wrangler-legacy issue 2039).
Only that code counts as "no subdomain"; any other answer is not known to mean it.
"""

from __future__ import annotations

from goldgate.cloudflare.api import CloudflareApi, path_segment
from goldgate.cloudflare.errors import CloudflareAuthError, CloudflareError

# Cloudflare's "not found", as GET .../workers/subdomain answers an account that has no subdomain.
NO_SUBDOMAIN_CODE = 10007


def subdomain_path(account_id: str) -> str:
    return f"/accounts/{path_segment(account_id, 'account id')}/workers/subdomain"


def account_subdomain(api: CloudflareApi, account_id: str) -> str | None:
    """The account's workers.dev subdomain (`<name>` of `<name>.workers.dev`), or None when Cloudflare answers
    that it has none (error 10007). Raises CloudflareAuthError for a refused token and CloudflareError for any
    other failure or answer, which says nothing about the subdomain."""
    path = subdomain_path(account_id)
    try:
        result = api.call("GET", path)
    except CloudflareAuthError:
        raise
    except CloudflareError as exc:
        if NO_SUBDOMAIN_CODE in exc.codes and (exc.status is None or exc.status < 500):
            return None
        raise
    name = result.get("subdomain") if isinstance(result, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise CloudflareError(f"GET {path} answered success without a subdomain name ({type(result).__name__}); "
                              "that is not an answer Cloudflare documents")
    return name.strip()
