"""The account's workers.dev subdomain, read before a deploy that needs it, and which stacks need it.

A Cloudflare account has no workers.dev subdomain until Workers & Pages is opened once in the dashboard (or
one is created through the API). A stack that serves its API there fails its first `pulumi up` with error
10063 halfway, after the bucket, database and endpoint were made; the cloud deployer asks first.

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

from urllib.parse import urlsplit

from goldgate.cloudflare.api import CloudflareApi, path_segment
from goldgate.cloudflare.errors import CloudflareAuthError, CloudflareError
from goldgate.spec import StackSpec

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


def serves_workers_dev(spec: StackSpec) -> bool:
    """Whether the stack's Worker is enabled on workers.dev, as infra/components/api.py's `on_workers_dev` decides
    it (its WorkersScriptSubdomain's `enabled`): the API's address is a workers.dev one, or
    api.keep_workers_dev keeps workers.dev beside a custom domain or route. A spec the program refuses (no
    address at all) is not on workers.dev here: `pulumi up` reports it. Kept beside the program's rule because
    importing it loads the Cloudflare provider's SDK (seconds); a test holds the two equal."""
    api = spec.api
    if api.keep_workers_dev:
        return True
    if api.custom_domain:
        address = f"https://{api.custom_domain}"
    elif api.public_base_url:
        address = api.public_base_url
    elif api.route:
        host = api.route.rpartition("://")[2].partition("/")[0]
        address = "https://" + host.lstrip("*.")
    else:
        return False
    try:
        host = urlsplit(address).hostname or ""
    except ValueError:
        return False
    return host.rstrip(".").endswith(".workers.dev")
