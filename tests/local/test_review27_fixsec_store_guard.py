"""A running local stack's object store serves the stack's own clients only, not a web page open in a browser.

moto's app was served as it is: its CORS layer reflected any Origin (a page could list, read, overwrite and delete
the stack's results) and its `/moto-api/reset` wiped the bucket until a restart (every result 503, every job
failed). Now a request with an Origin, any OPTIONS preflight, moto's control paths, a Host that is not the store's
own address and a credential naming another access key id than the stack's are refused with a 403, while a job's
worker still uploads its result and the service still serves it."""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from processes import kill_everything_naming
from stackfiles import stacks_file
from test_local_stack import api, wait_terminal

from goldgate.commands.local import ensure_up
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

STACK = "staging"
EVIL = "https://evil.example"
FAKE_PRESIGN = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAFAKE%2F20261201%2Fus-east-1%2Fs3%2Faws4_request"
                "&X-Amz-Date=20261201T000000Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature=00")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A stack of the module's own with one completed job: its state, bucket, result key and API client."""
    home = tmp_path_factory.mktemp("fixsec-store") / "home"
    home.mkdir()
    platform = LocalPlatform(home, stacks_file(home))
    try:
        ensure_up(platform, STACK)
        with api(platform, STACK) as client:
            created = client.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img",
                                                             "inputs": {"prompt": "a lighthouse", "seed": 7,
                                                                        "width": 512, "height": 512}})
            assert created.status_code == 202, created.text
            done = wait_terminal(client, created.json()["job_id"])
            assert done["status"] == "completed", done  # the worker's signed uploads got through
            yield {"platform": platform, "state": platform.require_running(STACK), "client": client,
                   "bucket": platform.spec(STACK).storage.bucket, "result": done["results"][0]}
    finally:
        try:
            platform.down(STACK)
        finally:
            kill_everything_naming(str(home))


def _request(stack: dict[str, Any], method: str, target: str, headers: dict[str, str] | None = None,
             body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    url = urllib.parse.urlsplit(stack["state"]["s3_endpoint_url"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def _own_client(stack: dict[str, Any]) -> Any:
    d = StackDir(stack["platform"].home, STACK)
    return boto3.client("s3", endpoint_url=stack["state"]["s3_endpoint_url"], region_name="us-east-1",
                        aws_access_key_id=d.secret("s3_access_key_id"),
                        aws_secret_access_key=d.secret("s3_secret_access_key"))


def _result_served(stack: dict[str, Any]) -> None:
    answer = stack["client"].get(stack["result"]["url"])
    assert answer.status_code == 200, answer.text
    assert len(answer.content) == stack["result"]["bytes"]


def test_a_page_with_an_origin_cannot_list_the_results_nor_is_told_it_may(stack) -> None:
    status, headers, body = _request(stack, "GET", f"/{stack['bucket']}?list-type=2", {"Origin": EVIL})
    assert status == 403
    assert "access-control-allow-origin" not in headers
    assert stack["result"]["key"].encode() not in body


def test_a_pages_no_cors_read_without_an_origin_is_refused_by_its_fetch_metadata(stack) -> None:
    # An <img> or a `no-cors` GET sends no Origin, but a browser marks it with Sec-Fetch-* headers
    status, _, body = _request(stack, "GET", f"/{stack['bucket']}?list-type=2",
                               {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"})
    assert status == 403
    assert stack["result"]["key"].encode() not in body


def test_a_preflight_gets_no_cors_permission(stack) -> None:
    status, headers, _ = _request(stack, "OPTIONS", f"/{stack['bucket']}/{stack['result']['key']}",
                                  {"Origin": EVIL, "Access-Control-Request-Method": "DELETE",
                                   "Access-Control-Request-Headers": "authorization"})
    assert status == 403
    assert not [name for name in headers if name.startswith("access-control-")], headers


def test_a_page_cannot_wipe_the_bucket_through_motos_control_api(stack) -> None:
    for headers in ({"Origin": EVIL}, {}):  # a no-cors POST carries an Origin; the path is refused either way
        status, _, _ = _request(stack, "POST", "/moto-api/reset", headers, b"")
        assert status == 403
    _result_served(stack)
    assert stack["result"]["key"] in [o["Key"] for o in _own_client(stack).list_objects_v2(
        Bucket=stack["bucket"]).get("Contents", [])]


def test_another_access_key_id_cannot_overwrite_or_delete_a_result(stack) -> None:
    target = f"/{stack['bucket']}/{urllib.parse.quote(stack['result']['key'])}?{FAKE_PRESIGN}"
    status, _, _ = _request(stack, "PUT", target, {"Content-Length": "4"}, b"evil")
    assert status == 403
    status, _, _ = _request(stack, "DELETE", target)
    assert status == 403
    auth = ("AWS4-HMAC-SHA256 Credential=AKIAFAKE/20261201/us-east-1/s3/aws4_request, SignedHeaders=host, "
            "Signature=00")
    status, _, _ = _request(stack, "GET", f"/{stack['bucket']}?list-type=2", {"Authorization": auth})
    assert status == 403
    _result_served(stack)


def test_a_request_naming_no_access_key_cannot_list_the_results(stack) -> None:
    # moto answers an anonymous ListObjects with every key (each a job id and its results); any local process, a
    # browser's aside, could read them
    status, _, body = _request(stack, "GET", f"/{stack['bucket']}?list-type=2")
    assert status == 403
    assert stack["result"]["key"].encode() not in body


def test_a_rebound_host_name_is_refused(stack) -> None:
    port = urllib.parse.urlsplit(stack["state"]["s3_endpoint_url"]).port
    status, _, body = _request(stack, "GET", f"/{stack['bucket']}?list-type=2", {"Host": f"evil.example:{port}"})
    assert status == 403
    assert stack["result"]["key"].encode() not in body


def test_the_stacks_own_key_still_lists_reads_and_presigns(stack) -> None:
    s3 = _own_client(stack)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=stack["bucket"]).get("Contents", [])]
    assert stack["result"]["key"] in keys
    assert len(s3.get_object(Bucket=stack["bucket"], Key=stack["result"]["key"])["Body"].read()) == \
        stack["result"]["bytes"]
    url = urllib.parse.urlsplit(s3.generate_presigned_url(
        "get_object", Params={"Bucket": stack["bucket"], "Key": stack["result"]["key"]}, ExpiresIn=60))
    status, _, body = _request(stack, "GET", f"{url.path}?{url.query}")
    assert status == 200 and len(body) == stack["result"]["bytes"]
