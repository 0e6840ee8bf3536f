"""A failed `pulumi up` says why: the failed resource's own error from the Diagnostics section of the CLI's output
(the CLI prints it on stdout and leaves stderr empty), or the program's exception, with advice where Cloudflare's
error code names the cause. Before, the message was the last line of the error's text, which for the real CLI is
`stderr:` or the stack's `update failed`, and said nothing of the cause."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cloud_deployer import A, B, deployer, emulator, project

from goldgate.release.deployers.cloud import CloudDeployFailed

__all__ = ["emulator", "project"]

# Pulumi's own shape: each resource's heading two spaces in, its messages four, a blank line between.
SUBDOMAIN_REQUIRED = """\
  cloudflare:index:WorkersScriptSubdomain (api-workers-dev):
    error: failed to make http request: POST "https://api.cloudflare.com/client/v4/accounts/00000000000000000000000000000001/workers/scripts/goldgate-api-prod/subdomain": 400 Bad Request {"result":null,"success":false,"errors":[{"code":10063,"message":"You need a workers.dev subdomain in order to proceed. Please go to the dashboard and open the Workers menu. Opening the Workers landing page for the first time will create a workers.dev subdomain automatically."}],"messages":[]}

  pulumi:pulumi:Stack (goldgate-prod):
    error: update failed
"""  # Cloudflare's error is one line in the CLI's output

PROGRAM_EXCEPTION = """\
  pulumi:pulumi:Stack (goldgate-prod):
    error: Program failed with an unhandled exception:
    Traceback (most recent call last):
      File "/srv/goldgate/infra/__main__.py", line 12, in <module>
        main()
    goldgate.errors.SpecError: stack prod: goldgate:spec.endpoint.workers_max 0 must be at least 1
"""

A_WARNING_AND_AN_ERROR = """\
  cloudflare:index:D1Database (database):
    warning: the database is in a jurisdiction the token cannot list

  cloudflare:index:WorkersScript (api-script):
    error: failed to make http request: PUT "https://api.cloudflare.com/client/v4/accounts/00000000000000000000000000000001/workers/scripts/goldgate-api-prod": 403 Forbidden {"result":null,"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[]}

  pulumi:pulumi:Stack (goldgate-prod):
    error: update failed
"""


def _failed_up(project: Path, monkeypatch: pytest.MonkeyPatch, diagnostics: str) -> str:
    deployer(project).deploy("prod", A, progress=lambda _m: None)
    monkeypatch.setenv("PULUMI_STANDIN_FAIL_UP", "diagnostics")
    monkeypatch.setenv("PULUMI_STANDIN_DIAGNOSTICS", diagnostics)
    shown: list[str] = []
    with pytest.raises(CloudDeployFailed) as failed:
        deployer(project).deploy("prod", B, progress=shown.append)
    assert any("Diagnostics:" in line for line in shown)  # the operator saw the whole output meanwhile
    return str(failed.value)


def test_an_account_without_a_workers_dev_subdomain_is_named_with_what_to_do(project: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    message = _failed_up(project, monkeypatch, SUBDOMAIN_REQUIRED)
    assert message.startswith("pulumi up of prod failed: cloudflare:index:WorkersScriptSubdomain (api-workers-dev): "
                              "failed to make http request: POST")
    assert "You need a workers.dev subdomain in order to proceed" in message
    assert "no workers.dev subdomain yet (error 10063): open Workers & Pages in the Cloudflare dashboard once" \
        in message
    assert "update failed" not in message and "stderr:" not in message
    assert message.endswith(f"the stack config pins {B} (was {A}): fix the cause and deploy again, or roll back")


def test_the_programs_exception_is_the_cause_not_its_traceback_heading(project: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    message = _failed_up(project, monkeypatch, PROGRAM_EXCEPTION)
    assert ("pulumi up of prod failed: the program: goldgate.errors.SpecError: stack prod: "
            "goldgate:spec.endpoint.workers_max 0 must be at least 1;") in message
    assert "Traceback" not in message and "update failed" not in message


def test_only_errors_count_and_a_refused_token_gets_its_advice(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    message = _failed_up(project, monkeypatch, A_WARNING_AND_AN_ERROR)
    assert "cloudflare:index:WorkersScript (api-script): failed to make http request: PUT" in message
    assert "jurisdiction" not in message  # a warning is not why it failed
    assert "Cloudflare refused the stack's API token (error 10000)" in message
    assert "workers.dev subdomain" not in message


def test_a_refusal_of_the_program_is_its_whole_message(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """infra/__main__.py turns goldgate's refusals into pulumi.RunError: the message alone, no traceback; a message
    of two lines keeps both."""
    refusal = ("  pulumi:pulumi:Stack (goldgate-prod):\n"
               "    error: stack prod: the image's workflows differ from this checkout's\n"
               "    run from the build's commit, or set GOLDGATE_WORKFLOWS_DIR\n\n"
               "  pulumi:pulumi:Stack (goldgate-prod):\n    error: update failed\n")
    message = _failed_up(project, monkeypatch, refusal)
    assert ("failed: the program: stack prod: the image's workflows differ from this checkout's run from the "
            "build's commit, or set GOLDGATE_WORKFLOWS_DIR;") in message
