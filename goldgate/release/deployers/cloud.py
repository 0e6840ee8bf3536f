"""The cloud deployer: Pulumi's Automation API over the project's own program, then RunPod's rollout.

Deploying a stack is a config pin, nothing else: select the stack in the project directory, set the
image inside the one spec (`pulumi config set --path goldgate:spec.image <repo@sha256:...>`, so the
spec stays the single source and `stacks/Pulumi.<stack>.yaml` records the pin), `up`, read the
outputs (`endpoint_id`, `api_url`), then wait until RunPod's `/releases` reports the new release
on 100% of workers and the endpoint names the image. Rollback is the same call with an older digest.
Before the pin, the stack's Cloudflare account has its workers.dev subdomain asked for
(goldgate.cloudflare.workers): without one, `pulumi up` would fail halfway with error 10063. So is RunPod asked,
with the key that will watch the rollout, for the stack's endpoint: a key it refuses would be found only after `up`.
Pulumi's own `stack history` keeps each update's config.
"""

from __future__ import annotations

import collections
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from goldgate.bounded_http import bearer_token
from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.errors import CloudflareAuthError, CloudflareError
from goldgate.cloudflare.workers import (
    NO_SUBDOMAIN_CODE,
    account_subdomain,
    subdomain_path,
)
from goldgate.errors import GoldgateError, SpecError
from goldgate.release.deployers import image_workflows
from goldgate.release.deployers.base import DeployResult, Progress, RolloutNotConfirmed, workers_kept
from goldgate.release.error_rate import from_api
from goldgate.release.gate import ErrorRate
from goldgate.release.golden import ApiAccess
from goldgate.runpod import EndpointPatch, RunPodAuthError, RunPodError, RunPodNotFound
from goldgate.spec import (
    CLOUDFLARE_API_BASE_CONFIG_KEY,
    CONFIG_NAMESPACE,
    SPEC_CONFIG_KEY,
    STACK_SECRET_KEYS,
    STACKS_DIR,
    StackSpec,
    checked_cloudflare_api_base,
    is_digest_ref,
    load_pulumi,
)

# The stack config's keys, by goldgate.spec's names (the Pulumi program reads them by the same).
IMAGE_KEY = f"{CONFIG_NAMESPACE}:{SPEC_CONFIG_KEY}.image"
# what the program's Cloudflare provider takes
CLOUDFLARE_TOKEN_KEY = f"{CONFIG_NAMESPACE}:{STACK_SECRET_KEYS['cloudflare_api_token']}"
CLOUDFLARE_API_BASE_KEY = f"{CONFIG_NAMESPACE}:{CLOUDFLARE_API_BASE_CONFIG_KEY}"
API_TOKEN_KEY = f"{CONFIG_NAMESPACE}:{STACK_SECRET_KEYS['api_token']}"
RUNPOD_API_KEY_KEY = f"{CONFIG_NAMESPACE}:{STACK_SECRET_KEYS['runpod_api_key']}"
_ACCOUNT_ID = re.compile(r"[0-9a-f]{32}")
# How the Pulumi CLI's `config get` says a key has no value (in the stack file nor its environments).
_NOT_SET = re.compile(r"configuration key '[^']*' not found for stack")
# The subdomain check is one small GET: a few seconds' bound and one retry, so an unreachable API delays the
# deploy it cannot block by seconds, not minutes.
_SUBDOMAIN_TIMEOUT_S = 15.0
_SUBDOMAIN_ATTEMPTS = 2
REPO_ROOT = Path(__file__).resolve().parents[3]


class CloudDeployFailed(GoldgateError):
    """Pulumi or RunPod did not complete the deploy; the stack config says what was pinned."""


class CloudRolloutNotConfirmed(CloudDeployFailed, RolloutNotConfirmed):
    """`pulumi up` applied the image, and the watch of its rollout on RunPod failed (`result` says what was applied)."""


class RolloutTimedOut(CloudDeployFailed):
    """The endpoint's rollout did not finish within the deploy's rollout timeout."""


@dataclass(frozen=True)
class CloudSettings:
    project_dir: Path = REPO_ROOT
    pulumi_root: str | None = None          # a directory holding bin/pulumi; None = `pulumi` on PATH
    rollout_timeout_s: float = 1800.0
    rollout_poll_s: float = 5.0
    env: tuple[tuple[str, str], ...] = ()   # extra environment for the pulumi process


class CloudDeployer:
    target = "cloud"

    def __init__(self, settings: CloudSettings = CloudSettings(),
                 control_client: Callable[[str, str], Any] | None = None, home: Path | None = None) -> None:
        self.settings = settings
        self.home = home    # the state dir whose ledger says what each image was built with; None: unknown
        self._control_client = control_client or _default_control_client
        self._command: Any = None
        self._stacks: dict[str, Any] = {}  # selecting a stack is one CLI run; do it once per stack

    @classmethod
    def from_env(cls, home: Path | None = None) -> CloudDeployer:
        return cls(CloudSettings(project_dir=Path(os.environ.get("GOLDGATE_PROJECT_DIR") or REPO_ROOT),
                                 pulumi_root=os.environ.get("GOLDGATE_PULUMI_ROOT") or None,
                                 rollout_timeout_s=_seconds_from_env("GOLDGATE_ROLLOUT_TIMEOUT_S", 1800.0)),
                   home=home)

    # -- Pulumi ---------------------------------------------------------------------------------

    def _stack(self, stack: str) -> Any:
        from pulumi import automation as auto

        if stack in self._stacks:
            return self._stacks[stack]
        try:
            if self._command is None:
                self._command = auto.PulumiCommand(root=self.settings.pulumi_root)
            opts = auto.LocalWorkspaceOptions(pulumi_command=self._command, env_vars=dict(self.settings.env))
            self._stacks[stack] = auto.select_stack(stack, work_dir=str(self.settings.project_dir), opts=opts)
            return self._stacks[stack]
        except FileNotFoundError:
            raise CloudDeployFailed("the pulumi CLI is not installed (or GOLDGATE_PULUMI_ROOT has no bin/pulumi); "
                                    "the cloud target needs it") from None
        except auto.errors.CommandError as exc:
            raise CloudDeployFailed(f"pulumi cannot select stack {stack!r}: {_last_line(exc)}") from None

    def current_image(self, stack: str) -> str | None:
        from pulumi import automation as auto

        try:
            value = self._stack(stack).get_config(IMAGE_KEY, path=True).value
        except auto.errors.CommandError:
            return None
        return value or None

    def deploy(self, stack: str, image: str, progress: Progress) -> DeployResult:
        from pulumi import automation as auto

        if not is_digest_ref(image):
            raise CloudDeployFailed(f"{image!r} is not pinned by digest (repo@sha256:<64 hex>); stacks never "
                                    "take a tag")
        if image.startswith("local/"):
            raise CloudDeployFailed(f"{image} is a local-target image (from the local image store); the cloud needs "
                                    "a pushed one: `goldgate build --engine docker --repo <registry>/<name>`")
        s = self._stack(stack)
        with tempfile.TemporaryDirectory(prefix="goldgate-workflows-") as scratch:
            try:   # before the pin: a refusal here changes nothing
                workflows = image_workflows.resolve(self.settings.project_dir, self.home, image, Path(scratch))
            except image_workflows.WorkflowsUnavailable as exc:
                raise CloudDeployFailed(f"not deploying {image} to {stack}: {exc}") from None
            progress(workflows.note)
            self._check_workers_dev(s, stack, image, progress)   # before the pin, as above
            # So is the key that watches the rollout; and the endpoint's release before, to tell one that makes none.
            key, release = self._check_runpod_key(s, stack, image, progress)
            before = self.current_image(stack)
            progress(f"pulumi: pin {IMAGE_KEY}={image} on stack {stack}")
            env = s.workspace.env_vars   # the pulumi CLI, so the program it runs, gets these
            # Always named, empty for the checkout's: the CLI inherits this process's environment, and one
            # exported there would be bundled instead. Absolute: the program runs in the project's directory,
            # not in this one, and a relative GOLDGATE_PROJECT_DIR made a path that named nothing there.
            env[image_workflows.WORKFLOWS_ENV] = ("" if workflows.directory is None else
                                                  str(workflows.directory.absolute()))
            output: collections.deque[str] = collections.deque(maxlen=_OUTPUT_LINES_KEPT)

            def shown(line: str) -> None:
                output.append(line)
                if line.strip():
                    progress(f"pulumi: {line}")

            try:
                s.set_config(IMAGE_KEY, auto.ConfigValue(value=image), path=True)
                progress(f"pulumi up ({stack})")
                result = s.up(on_output=shown, message=f"goldgate deploy {image}")
            except auto.errors.CommandError as exc:
                raise CloudDeployFailed(f"pulumi up of {stack} failed: {up_failure(exc, output)}; the stack config "
                                        f"pins {image} (was {before}): fix the cause and deploy again, or roll "
                                        "back") from None
            finally:
                env.pop(image_workflows.WORKFLOWS_ENV, None)
        # From here on the stack serves (or is rolling to) `image`: a failure is of the watch alone, and says what
        # was applied (RolloutNotConfirmed), so the ledger records what the stack runs, not what it ran before.
        outputs = {k: v.value for k, v in result.outputs.items()}
        endpoint_id = outputs.get("endpoint_id") or outputs.get("runpod_endpoint_id")
        applied = f"pulumi up applied {image} to {stack} (its stack config pins it; was {before})"
        again = (f"once that is fixed, deploy {image} to {stack} again: pulumi finds nothing to change and the "
                 "rollout is watched")
        if not endpoint_id:
            raise self._unconfirmed(stack, image, before, None,
                                    f"{applied}, but it has no `endpoint_id` output, so its rollout cannot be watched")
        base = str(outputs.get("runpod_api_base") or self.spec(stack).cloud.runpod_api_base)  # type: ignore[union-attr]
        try:
            with self._control_client(key.value, base.removesuffix("/").removesuffix("/v2")) as client:
                restore_idle_workers(client, str(endpoint_id), self.spec(stack), progress)
                rollout = wait_for_rollout(client, str(endpoint_id), image, timeout_s=self.settings.rollout_timeout_s,
                                           poll_s=self.settings.rollout_poll_s, progress=progress)
        except RunPodError as exc:
            refused = (f"RunPod refused the RunPod API key from {key.source} (HTTP {exc.status}): {key.advice}"
                       if isinstance(exc, RunPodAuthError) else _cut(str(exc), 400))
            raise self._unconfirmed(stack, image, before, str(endpoint_id),
                                    f"{applied}, but its rollout on endpoint {endpoint_id} could not be watched: "
                                    f"{refused}; {again}") from None
        except RolloutTimedOut as exc:
            raise self._unconfirmed(stack, image, before, str(endpoint_id), f"{applied}, but the {exc}; {again}") \
                from None
        kept = release is not None and rollout.get("release_id") == release
        if kept:
            progress(workers_kept(stack, release, int(rollout.get("workers_total") or 0),
                                  "RunPod starts fresh ones as it scales the idle ones away (the endpoint's idle "
                                  "timeout), or for the next release (a change of the image or its env)"))
        return DeployResult(stack=stack, target=self.target, before=before, after=self.current_image(stack),
                            rollout={"endpoint_id": endpoint_id, "confirmed": True, **rollout,
                                     **({"new_release": False} if kept else {})})

    def _unconfirmed(self, stack: str, image: str, before: str | None, endpoint_id: str | None,
                     message: str) -> RolloutNotConfirmed:
        """A deploy `pulumi up` applied whose rollout was not confirmed: what the stack runs now is `image`."""
        return CloudRolloutNotConfirmed(message, DeployResult(
            stack=stack, target=self.target, before=before, after=image,
            rollout={"endpoint_id": endpoint_id, "confirmed": False}))

    def spec(self, stack: str) -> StackSpec:
        return load_pulumi(stack, self.settings.project_dir / STACKS_DIR.name)

    def _check_workers_dev(self, s: Any, stack: str, image: str, progress: Progress) -> None:
        """Refuse, before anything is changed, a stack whose Cloudflare account has no workers.dev subdomain:
        the Worker's upload fails with error 10063 on such an account, whatever address the API is served at
        (cloudflare/workers-sdk#14494: wrangler now asks before a Worker's first upload), so its `pulumi up`
        would fail halfway, after the bucket, the database and the endpoint were created. Asked with the
        stack's own Cloudflare token, account and API base (what the program's provider uses). Only
        Cloudflare's documented "none" refuses: a check that cannot be made (unreachable, a 5xx, a refused
        token, config the program refuses) says so and the deploy goes on, so `pulumi up` reports what is
        wrong, as it did before this check. A public_base_url under another workers.dev subdomain is refused
        too: RunPod's webhooks go there."""
        from pulumi import automation as auto

        try:
            spec = self.spec(stack)
        except GoldgateError:
            return   # the program's own refusal, at `pulumi up`, names the problem
        if spec.cloud is None:
            return
        account = spec.cloud.cloudflare_account_id
        if not _ACCOUNT_ID.fullmatch(account):
            return   # a placeholder: the program refuses it before declaring anything
        where = f"the workers.dev subdomain of Cloudflare account {account}"
        try:
            token = bearer_token(str(s.get_config(CLOUDFLARE_TOKEN_KEY).value or ""))
            try:
                base = s.get_config(CLOUDFLARE_API_BASE_KEY).value
            except auto.errors.CommandError:
                base = None   # unset: Cloudflare's own API, as the program takes it
            base = checked_cloudflare_api_base(base, f"stack {stack}")
        except (auto.errors.CommandError, SpecError):
            token = None
        if not token:
            progress(f"cloudflare: {where} not checked: stack {stack}'s {CLOUDFLARE_TOKEN_KEY} or "
                     f"{CLOUDFLARE_API_BASE_KEY} cannot be used here (pulumi up reports why)")
            return
        try:
            with CloudflareApi(token, base, timeout_s=_SUBDOMAIN_TIMEOUT_S, attempts=_SUBDOMAIN_ATTEMPTS,
                               deadline_s=_SUBDOMAIN_TIMEOUT_S) as api:
                subdomain = account_subdomain(api, account)
        except CloudflareAuthError as exc:
            progress(f"cloudflare: {where} not checked: Cloudflare refused stack {stack}'s {CLOUDFLARE_TOKEN_KEY} "
                     f"(HTTP {exc.status}); pulumi up will report it")
            return
        except CloudflareError as exc:
            progress(f"cloudflare: could not check {where} ({_cut(str(exc), 300)}); deploying anyway: if it has "
                     "none, pulumi up fails with error 10063")
            return
        if subdomain is None:
            raise CloudDeployFailed(
                f"not deploying {image} to {stack}: Cloudflare account {account} has no workers.dev subdomain "
                f"(Cloudflare answered error {NO_SUBDOMAIN_CODE} to GET {subdomain_path(account)}), so the upload of "
                f"stack {stack}'s Worker, and with it `pulumi up`, would fail with error 10063 halfway, after creating "
                "the other resources. Nothing was changed (no config pin, no pulumi up). Open Workers & Pages in "
                "the Cloudflare dashboard once (which registers a subdomain), or create one (PUT "
                f"{subdomain_path(account)}); if api.public_base_url is a workers.dev address, set it to "
                f"https://{spec.api.script_name}.<subdomain>.workers.dev; then deploy again")
        progress(f"cloudflare: account {account} has the workers.dev subdomain {subdomain}.workers.dev")
        served = f"{spec.api.script_name}.{subdomain}.workers.dev".lower()
        declared = _workers_dev_host(spec.api.public_base_url)
        if declared is None or declared == served:
            return
        if declared.endswith(f".{subdomain.lower()}.workers.dev"):
            # Another Worker of this account: it may be a gateway in front of the API (a service binding), so said,
            # not refused.
            progress(f"cloudflare: stack {stack}'s api.public_base_url names {declared}, not {served} where Cloudflare "
                     f"serves the Worker {spec.api.script_name}: RunPod's webhooks and the golden tests go there, so "
                     "it must pass them on to this Worker")
            return
        # Another account's subdomain, an old one, or the shipped placeholder: every webhook would go nowhere, and
        # every job would stay queued or in progress until recovered by hand.
        raise CloudDeployFailed(
            f"not deploying {image} to {stack}: its api.public_base_url names {declared}, but Cloudflare account "
            f"{account} serves the Worker {spec.api.script_name} at {served} (its workers.dev subdomain is "
            f"{subdomain}); RunPod's webhooks and the golden tests would go to an address this account does not "
            f"serve. Nothing was changed. Set api.public_base_url to https://{served} in stacks/Pulumi.{stack}.yaml, "
            "then deploy again")

    def api_access(self, stack: str) -> ApiAccess:
        s = self._stack(stack)
        outputs = {k: v.value for k, v in s.outputs().items()}
        api_url = outputs.get("api_url")
        if not api_url:
            raise CloudDeployFailed(f"stack {stack} has no `api_url` output; has it been deployed?")
        return ApiAccess(api_url=str(api_url), token=self._secret(s, "GOLDGATE_API_TOKEN", API_TOKEN_KEY))

    def error_rate(self, stack: str, since: datetime) -> ErrorRate:
        access = self.api_access(stack)
        return from_api(access.api_url, access.token, since)

    def ensure_up(self, stack: str, progress: Progress) -> None:
        self._stack(stack)

    def _secret(self, s: Any, env_name: str, config_key: str) -> str:
        """`<ENV>_<STACK>` (e.g. GOLDGATE_API_TOKEN_STAGING), then `<ENV>`, then the stack's Pulumi secret."""
        return self._sourced_secret(s, env_name, config_key).value

    def _sourced_secret(self, s: Any, env_name: str, config_key: str) -> SourcedSecret:
        from pulumi import automation as auto

        for name in (f"{env_name}_{s.name.upper().replace('-', '_')}", env_name):
            if os.environ.get(name):
                return SourcedSecret(_header_token(os.environ[name], name), f"the environment variable {name}",
                                     f"{name} overrides the {config_key} secret of stack {s.name}: set it to the "
                                     "current key, or unset it to use the stack's")
        try:
            value = s.get_config(config_key).value
        except auto.errors.CommandError:
            value = ""
        if not value:
            raise CloudDeployFailed(f"no {env_name} (or {env_name}_{s.name.upper()}) in the environment and no "
                                    f"{config_key} secret in the config of stack {s.name}")
        where = f"the {config_key} secret of stack {s.name}"
        return SourcedSecret(_header_token(str(value), where), where,
                             f"set the current key there (`pulumi config set --secret {config_key} --stack "
                             f"{s.name}`, the value piped in), or set {env_name}_{s.name.upper()} to it")

    def _check_runpod_key(self, s: Any, stack: str, image: str,
                          progress: Progress) -> tuple[SourcedSecret, str | None]:
        """The RunPod key that watches the rollout, and proof that RunPod takes it, before anything is changed: a
        key RunPod refuses is found only after `pulumi up` otherwise, with the stack already serving the image
        (and, on PROD, an automatic rollback that changes it again, unwatched). One authenticated read: the
        stack's endpoint, when its outputs name one (a 404 is an answer under the key too), else the list of the
        account's endpoints. A key RunPod refuses, or a control plane that cannot be asked, refuses the deploy.
        Also returns the id of the endpoint's newest release, when it has one that can be read (None otherwise)."""
        key = self._sourced_secret(s, "RUNPOD_API_KEY", RUNPOD_API_KEY_KEY)
        outputs = self._outputs(s)
        endpoint_id = outputs.get("endpoint_id") or outputs.get("runpod_endpoint_id")
        try:
            base = str(outputs.get("runpod_api_base") or self.spec(stack).cloud.runpod_api_base)  # type: ignore[union-attr]
        except (GoldgateError, AttributeError):
            return key, None   # a spec the program refuses: `pulumi up` says why, before it declares anything
        not_deploying = f"not deploying {image} to {stack}"
        release = None
        try:
            with self._control_client(key.value, base.removesuffix("/").removesuffix("/v2")) as client:
                if endpoint_id:
                    try:
                        client.get_endpoint(str(endpoint_id))
                    except RunPodNotFound:
                        progress(f"runpod: endpoint {endpoint_id} (stack {stack}'s output) is gone; pulumi up "
                                 "will say what it does about it")
                    else:
                        release = _latest_release(client, str(endpoint_id))
                else:
                    client.list_endpoints()
        except RunPodAuthError as exc:
            raise CloudDeployFailed(
                f"{not_deploying}: RunPod refused the RunPod API key from {key.source} (HTTP {exc.status}); "
                f"{key.advice}. Nothing was changed (no config pin, no pulumi up)") from None
        except RunPodError as exc:
            raise CloudDeployFailed(
                f"{not_deploying}: cannot check the RunPod API key from {key.source} with RunPod's control plane "
                f"({_cut(str(exc), 400)}); the rollout could not be watched either. Nothing was changed (no config "
                "pin, no pulumi up): deploy again once RunPod answers") from None
        progress(f"runpod: the control plane takes the RunPod API key from {key.source}")
        return key, release

    def config_resolved(self, stack: str, key: str) -> tuple[bool | None, str]:
        """Whether the Pulumi CLI finds a value for `key` on `stack` (`pulumi config get KEY --stack S`): the stack
        file's, or one a Pulumi ESC environment the file imports supplies through its `pulumiConfig`, which only
        the CLI resolves. Never the value: (True, ""); (False, why) when the CLI says the key is not set, or it is
        blank; (None, the CLI's last line) when it could not answer (an environment it cannot open: `pulumi up`
        reports that itself)."""
        from pulumi import automation as auto

        try:
            value = self._stack(stack).get_config(key).value
        except auto.errors.CommandError as exc:
            said = _last_line(exc)
            return (False, "not set") if _NOT_SET.search(said) else (None, said)
        return (True, "") if str(value or "").strip() else (False, "empty")

    def _outputs(self, s: Any) -> dict[str, Any]:
        """The stack's outputs as its last update left them; none for a stack never deployed (or unreadable)."""
        from pulumi import automation as auto

        try:
            return {k: v.value for k, v in s.outputs().items()}
        except auto.errors.CommandError:
            return {}


@dataclass(frozen=True)
class SourcedSecret:
    """A credential and where it came from: an error may name `source` (and give `advice`), never `value`."""

    value: str = field(repr=False)
    source: str
    advice: str


def _workers_dev_host(url: str | None) -> str | None:
    """The workers.dev host `url` names (lower case, no port or final dot), or None for any other address."""
    try:
        host = (urlsplit(url).hostname or "") if url else ""
    except ValueError:
        return None
    host = host.rstrip(".").lower()
    return host if host.endswith(".workers.dev") else None


def _header_token(value: str, name: str) -> str:
    """A token as an Authorization header carries it: a pasted line break around it is dropped; one with a space,
    control or non-ASCII character inside is refused without being shown (httpx would quote the whole header,
    the token, in its error, and that error reaches the golden report)."""
    token = bearer_token(value)
    if not token:
        raise CloudDeployFailed(f"{name} holds a space, a line break or a non-ASCII character inside it (or nothing "
                                "but blanks): set it to the token alone")
    return token


def _latest_release(client: Any, endpoint_id: str) -> str | None:
    """The id of the endpoint's newest release; None when RunPod does not say (only a note depends on it)."""
    try:
        latest = client.list_releases(endpoint_id).latest
    except RunPodError:
        return None
    return None if latest is None else latest.id


def restore_idle_workers(client: Any, endpoint_id: str, spec: StackSpec, progress: Progress) -> None:
    """RunPod lowers an endpoint idle for 7 days to 0 workers, behind Pulumi's back: its state still says the
    spec's, so an `up` that changes the image leaves the endpoint with none, and every golden case times out. Put
    the spec's workers back (what Pulumi's state already records). A refresh would do it too, but reads every
    resource with the credentials in the state, which fails once a rotated key is revoked."""
    endpoint = client.get_endpoint(endpoint_id)
    want = (spec.endpoint.workers_min, spec.endpoint.workers_max)
    if (endpoint.workers_min, endpoint.workers_max) == want:
        return
    progress(f"endpoint {endpoint_id} has workers {endpoint.workers_min}..{endpoint.workers_max} (RunPod lowers an "
             f"endpoint idle for 7 days to 0); setting the spec's {want[0]}..{want[1]} back")
    client.update_endpoint(endpoint_id, EndpointPatch(workers_min=want[0], workers_max=want[1]))


def wait_for_rollout(client: Any, endpoint_id: str, image: str, *, timeout_s: float, poll_s: float,
                     progress: Progress) -> dict[str, Any]:
    """Poll the control plane until the endpoint names `image` and its latest release is on every worker.

    With no workers allocated (min 0, idle) RunPod reports 0% and no rollout in progress: the next
    worker starts on the latest release, so that counts as rolled out."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        endpoint = client.get_endpoint(endpoint_id)
        history = client.list_releases(endpoint_id)
        r = history.rollout
        done = (endpoint.image == image and not r.in_progress
                and (r.percent_on_latest == 100 or r.workers_total == 0))
        state = f"{r.workers_on_latest}/{r.workers_total} workers on the latest release ({r.percent_on_latest}%)"
        if state != last:
            progress(f"rollout of {endpoint_id}: {state}")
            last = state
        if done:
            latest = history.latest
            return {"endpoint_version": history.endpoint_version, "release_id": latest.id if latest else None,
                    "workers_total": r.workers_total, "percent_on_latest": r.percent_on_latest}
        if time.monotonic() > deadline:
            raise RolloutTimedOut(f"rollout of endpoint {endpoint_id} did not finish within {timeout_s:g} s "
                                  f"({state}; endpoint image {endpoint.image}); the config pins {image}")
        time.sleep(poll_s)


def _seconds_from_env(name: str, default: float) -> float:
    text = os.environ.get(name) or ""
    if not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise CloudDeployFailed(f"{name}={text!r} is not a number of seconds greater than 0 (e.g. 1800)")
    return value


def _default_control_client(api_key: str, base_url: str) -> Any:
    from goldgate.runpod import ControlPlaneClient

    return ControlPlaneClient(api_key, base_url)


def _last_line(exc: BaseException, output: Sequence[str] = ()) -> str:
    """The last line the CLI wrote to stderr, else to stdout (`output`), else the exception's name."""
    lines = [ln.strip() for ln in _stderr(exc).splitlines() if ln.strip()]
    lines = lines or [ln.strip() for ln in output if ln.strip()]
    return lines[-1][:300] if lines else type(exc).__name__


def _stderr(exc: BaseException) -> str:
    """What the pulumi CLI wrote to stderr: the Automation API's CommandError keeps it only in its text,
    `\n code: N\n stdout: ...\n stderr: ...`; another exception's text is its own."""
    text = str(exc)
    before, marker, after = text.rpartition("\n stderr: ")
    return after if marker and "\n stdout: " in before else text


# Lines of `pulumi up` output kept for the failure message: its Diagnostics section comes last.
_OUTPUT_LINES_KEPT = 2000
# In the Diagnostics section: a resource's heading (`  cloudflare:index:WorkersScript (api-script):`), then its
# messages, each `    error: ...` or `    warning: ...` and any further lines indented deeper.
_RESOURCE_HEADING = re.compile(r"^  (?P<type>[\w-]+:[\w/.-]*:[\w.-]+) \((?P<name>[^)]*)\):$")
_MESSAGE = re.compile(r"^    (?P<level>error|warning|info): (?P<text>.*)$")
# What a failing resource's error means when Cloudflare's code alone says it, and what to do.
_KNOWN_CAUSES = (
    (re.compile(r'"code":\s*10063\b|\[code: 10063\]|subdomain_required|need a workers\.dev subdomain',
                re.IGNORECASE),
     ("the Cloudflare account has no workers.dev subdomain yet (error 10063): open Workers & Pages in the "
      "Cloudflare dashboard once, which registers one, then deploy again")),
    (re.compile(r'"code":\s*10000\b|\[code: 10000\]'),
     (f"Cloudflare refused the stack's API token (error 10000): check {CLOUDFLARE_TOKEN_KEY} and the "
      "permissions docs/CLOUD.md lists for it")),
)


def up_failure(exc: BaseException, output: Sequence[str]) -> str:
    """Why a `pulumi up` failed, for one error line: each failed resource's own error from the Diagnostics section
    of its output, and the program's (the last line of its traceback: the exception), with advice where the cause
    is known; else the last line of the CLI's stderr (or of its output). The stack's closing `update failed`
    says nothing."""
    blocks: list[tuple[str | None, list[str]]] = []   # (resource, the error's lines); None: the program's
    resource: str | None = None
    in_diagnostics = in_error = False
    for line in output:
        line = line.rstrip("\r\n")
        if line.strip() == "Diagnostics:":
            in_diagnostics, in_error = True, False
            continue
        if not in_diagnostics:
            continue
        if line and not line.startswith(" "):  # the next section (Outputs:, Resources:, Duration:)
            in_diagnostics = in_error = False
            continue
        heading = _RESOURCE_HEADING.match(line)
        if heading:
            resource = None if heading["type"] == "pulumi:pulumi:Stack" else f"{heading['type']} ({heading['name']})"
            in_error = False
            continue
        message = _MESSAGE.match(line)
        if message:
            in_error = message["level"] == "error"
            if in_error:
                blocks.append((resource, [message["text"].strip()]))
        elif in_error and line.startswith("    ") and line.strip():
            blocks[-1][1].append(line.strip())  # the error's further lines (a traceback's)
    errors = []
    for owner, lines in blocks:
        if owner is None:
            if lines == ["update failed"]:
                continue
            # An exception's traceback ends with the exception; a refusal (pulumi.RunError) is its message alone.
            traceback = lines[0].startswith("Program failed with an unhandled exception")
            errors.append(f"the program: {lines[-1] if traceback else ' '.join(lines)}")
        else:
            errors.append(f"{owner}: {' '.join(lines)}")
    summary = "; ".join(errors) or _last_line(exc, output)
    advice = [words for pattern, words in _KNOWN_CAUSES if pattern.search(summary)]
    return "; ".join([_cut(summary), *advice])


def _cut(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
