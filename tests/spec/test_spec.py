"""StackSpec: the shipped stacks load, and every bad field is refused with its name."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError

DIGEST = "registry.example/goldgate/worker@sha256:" + "a" * 64


def local_doc() -> dict:
    return yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())


def write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


def test_shipped_local_stacks_are_separate_and_valid() -> None:
    staging, prod = specs.load_local("staging"), specs.load_local("prod")
    assert staging.role == "staging" and prod.role == "prod"
    assert set(staging.resource_names().values()).isdisjoint(prod.resource_names().values())
    assert prod.database.protect and not staging.database.protect
    assert prod.endpoint.network_volume_id is None


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("endpoint", "workers_max"), "three", "stacks.staging.endpoint.workers_max: expected an integer"),
        (("endpoint", "workers_max"), 0, "stacks.staging.endpoint.workers_max: 0 is below the minimum"),
        (("endpoint", "gpu_pools"), [], "stacks.staging.endpoint.gpu_pools: must name at least one entry"),
        (("endpoint", "env"), {"WORKFLOW_VERSION": "x"}, "WORKFLOW_VERSION is set by goldgate"),
        # Both targets set the worker's GPU_TYPE from endpoint.cost_gpu_type: an env value would be dropped unseen.
        (("endpoint", "env"), {"GPU_TYPE": "NVIDIA L40"}, "GPU_TYPE is set by goldgate"),
        # the image's own wiring: the local target overrides it, so it would pass locally and break the cloud
        (("endpoint", "env"), {"MODEL_ROOTS": "/opt/elsewhere/models"}, "MODEL_ROOTS is the worker image's own"),
        (("endpoint", "env"), {"COMFY_URL": "http://127.0.0.1:9"}, "COMFY_URL is the worker image's own"),
        # where the worker removes each job's uploads from: one pointing elsewhere fills the worker's disk
        (("endpoint", "env"), {"COMFY_INPUT_DIR": "/tmp/elsewhere"}, "COMFY_INPUT_DIR is the worker image's own"),
        (("endpoint", "env"), {"bad name": "x"}, "not a valid environment variable name"),
        (("endpoint", "scaler_type"), "FASTEST", "is not one of QUEUE_DELAY, REQUEST_COUNT"),
        (("image",), "repo/worker:latest", "is not pinned by digest"),
        (("storage", "bucket"), "Bad_Bucket", "stacks.staging.storage.bucket"),
        (("workflow_version",), None, "stacks.staging.workflow_version: is required"),
        (("thresholds", "error_rate"), 1.5, "stacks.staging.thresholds.error_rate: 1.5 is above the maximum"),
        (("endpoint", "surprise"), 1, "stacks.staging.endpoint: unknown field(s) surprise"),
        (("local", "faults", "failed_rate"), -0.1, "stacks.staging.local.faults.failed_rate"),
        # A body over a D1 row's share for inputs could only ever be answered inputs_too_large.
        (("api", "max_body_bytes"), 2_000_000, "stacks.staging.api.max_body_bytes: 2000000 is above the maximum"),
    ],
)
def test_a_bad_field_is_refused_by_name(tmp_path: Path, path: tuple, value: object, message: str) -> None:
    doc = local_doc()
    node = doc["stacks"]["staging"]
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        specs.load_local("staging", write(tmp_path, doc))


def test_prod_with_a_network_volume_is_refused(tmp_path: Path) -> None:
    doc = local_doc()
    doc["stacks"]["prod"]["endpoint"]["network_volume_id"] = "vol-123"
    with pytest.raises(SpecError, match="PROD must not use a network volume"):
        specs.load_local("prod", write(tmp_path, doc))


def test_workers_min_above_max_is_refused(tmp_path: Path) -> None:
    doc = local_doc()
    doc["stacks"]["staging"]["endpoint"].update(workers_min=5, workers_max=2)
    with pytest.raises(SpecError, match="workers_min \\(5\\) exceeds workers_max \\(2\\)"):
        specs.load_local("staging", write(tmp_path, doc))


@pytest.mark.parametrize(("text", "phrase"), [
    ("stacks: [1, 2", "is not valid YAML at line 1, column 14: expected ',' or ']'"),
    ("- just a list", "expected a top-level `stacks:` mapping of stack name to settings"),
    ("", "expected a top-level `stacks:` mapping of stack name to settings"),
    ("stacks: 3", "expected a top-level `stacks:` mapping of stack name to settings"),
    ("\x00\x01", "is not valid YAML: unacceptable character #x0000"),
])
def test_malformed_stack_files_give_one_clear_error(tmp_path: Path, text: str, phrase: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        specs.load_local("staging", path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and phrase in message, message


def test_hostile_yaml_tags_are_not_executed(tmp_path: Path) -> None:
    text = "stacks: !!python/object/apply:os.system ['echo pwned']\n"
    with pytest.raises(SpecError, match="not valid YAML"):
        specs.load_local("staging", write(tmp_path, text))


def test_oversized_stack_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="larger than 1 MB"):
        specs.load_local("staging", write(tmp_path, "#" * 1_100_000))


def test_unknown_stack_names_the_known_ones() -> None:
    with pytest.raises(SpecError, match="no stack named 'qa' \\(stacks: prod, staging\\)"):
        specs.load_local("qa")


def test_with_image_only_takes_digests() -> None:
    staging = specs.load_local("staging")
    assert staging.with_image(DIGEST).image == DIGEST
    with pytest.raises(SpecError, match="not pinned by digest"):
        staging.with_image("repo/worker:v1")


def test_cloud_stack_requires_an_image_and_account() -> None:
    raw = copy.deepcopy(local_doc()["stacks"]["prod"])
    raw.pop("local")
    with pytest.raises(SpecError, match="goldgate:spec.cloud: is required"):
        specs.from_pulumi_config("prod", raw)
    raw["cloud"] = {"cloudflare_account_id": "0" * 32}
    with pytest.raises(SpecError, match="image is required for a cloud stack"):
        specs.from_pulumi_config("prod", raw)
    raw["image"] = DIGEST
    assert specs.from_pulumi_config("prod", raw).cloud.cloudflare_account_id == "0" * 32


@pytest.mark.parametrize(("execution_timeout_ms", "job_s", "ready_s"),
                         [(600_000, "540", "300"), (3_600_000, "3540", "300"), (30_000, "27", "27")])
def test_the_workers_own_bounds_end_inside_runpods_execution_timeout(tmp_path: Path, execution_timeout_ms: int,
                                                                     job_s: str, ready_s: str) -> None:
    doc = local_doc()
    doc["stacks"]["staging"]["endpoint"]["execution_timeout_ms"] = execution_timeout_ms
    doc["stacks"]["staging"]["endpoint"]["ttl_ms"] = execution_timeout_ms + specs.MIN_QUEUE_WAIT_MS
    endpoint = specs.load_local("staging", write(tmp_path, doc)).endpoint
    assert endpoint.worker_timeouts() == {"COMFY_JOB_TIMEOUT_S": job_s, "COMFY_READY_TIMEOUT_S": ready_s}


def test_a_key_given_twice_is_refused_naming_it_and_both_lines(tmp_path: Path) -> None:
    # YAML's last-one-wins would silently run a stack unlike the one its reader sees (Pulumi refuses such a file too).
    text = specs.LOCAL_STACKS_FILE.read_text().replace("      workers_max: 3\n",
                                                       "      workers_max: 3\n      workers_max: 1\n", 1)
    first = text.splitlines().index("      workers_max: 3") + 1
    with pytest.raises(SpecError) as err:
        specs.load_local("staging", write(tmp_path, text))
    message = str(err.value)
    assert "\n" not in message and str(write(tmp_path, text)) in message
    assert "'workers_max'" in message and f"line {first + 1}" in message and f"line {first}" in message


def test_a_stack_given_twice_is_refused(tmp_path: Path) -> None:
    text = specs.LOCAL_STACKS_FILE.read_text() + "  staging:\n    role: prod\n"
    with pytest.raises(SpecError, match="duplicate key 'staging'"):
        specs.load_local("prod", write(tmp_path, text))


def test_merge_keys_and_anchors_still_work(tmp_path: Path) -> None:
    doc = local_doc()
    declared = doc["stacks"]["prod"]["endpoint"]["workers_max"]

    def with_merge(doc: dict) -> str:
        text = "x-base: &ep {workers_max: 2, workers_min: 1}\n" + yaml.safe_dump(doc)
        return text.replace("    endpoint:\n", "    endpoint:\n      <<: *ep\n", 1)  # prod's (keys are sorted)

    assert specs.load_local("prod", write(tmp_path, with_merge(doc))).endpoint.workers_max == declared  # explicit wins
    del doc["stacks"]["prod"]["endpoint"]["workers_max"]
    assert specs.load_local("prod", write(tmp_path, with_merge(doc))).endpoint.workers_max == 2


def test_a_merge_key_bomb_is_refused_as_one_clear_error(tmp_path: Path) -> None:
    # 400 bytes whose `<<` merges multiply nine-fold per level: a few more levels hold a machine for hours.
    lines = ["a0: &a0 {k0: 1, k1: 1, k2: 1, k3: 1, k4: 1, k5: 1, k6: 1, k7: 1, k8: 1}"]
    lines += [f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 9)}]}}" for i in range(1, 6)]
    lines.append("stacks: {staging: {<<: *a5}}")
    with pytest.raises(SpecError, match=r"is not valid YAML at line \d+, column \d+: merge keys \(<<\) expand to more"):
        specs.load_local("staging", write(tmp_path, "\n".join(lines) + "\n"))


def test_an_unquoted_date_is_read_as_the_text_pulumi_reads(tmp_path: Path) -> None:
    # Pulumi reads `compatibility_date: 2025-09-01` as the string "2025-09-01"; so must every stack file reader
    # (the guardrails reread both cloud stack files before each deployment).
    doc = local_doc()
    text = yaml.safe_dump(doc).replace("api:\n      script_name: goldgate-api-staging\n",
                                       "api:\n      compatibility_date: 2025-10-01\n"
                                       "      script_name: goldgate-api-staging\n", 1)
    assert "compatibility_date: 2025-10-01\n" in text
    assert specs.load_local("staging", write(tmp_path, text)).api.compatibility_date == "2025-10-01"


@pytest.mark.parametrize("key", ["x" * 5000, "surprise\nX-Injected: 1", "\x1b[2J"])
def test_an_unknown_field_is_named_on_one_short_line(tmp_path: Path, key: str) -> None:
    doc = local_doc()
    doc["stacks"]["staging"]["endpoint"][key] = 1
    with pytest.raises(SpecError, match="stacks.staging.endpoint: unknown field") as err:
        specs.load_local("staging", write(tmp_path, doc))
    message = str(err.value)
    assert len(message) < 500 and "\n" not in message and "\x1b" not in message


def test_a_missing_stack_lists_the_others_on_one_short_line(tmp_path: Path) -> None:
    doc = {"stacks": {"x" * 5000: {}, "qa\nX-Injected: 1": {}, **{f"s{i}": {} for i in range(50)}}}
    with pytest.raises(SpecError, match="no stack named 'staging'") as err:
        specs.load_local("staging", write(tmp_path, doc))
    message = str(err.value)
    assert len(message) < 1000 and "\n" not in message


@pytest.mark.parametrize(("execution_timeout_ms", "ttl_ms"), [(600_000, 600_000), (600_000, 300_000),
                                                              (3_600_000, 3_600_000), (600_000, 1_199_999)])
def test_a_ttl_that_could_delete_a_job_before_it_times_out_is_refused(tmp_path: Path, execution_timeout_ms: int,
                                                                      ttl_ms: int) -> None:
    # RunPod's ttl counts from submission: a job still queued or running when it runs out is deleted (404), never
    # TIMED_OUT, and the service waits for a webhook that cannot come.
    doc = local_doc()
    doc["stacks"]["staging"]["endpoint"].update(execution_timeout_ms=execution_timeout_ms, ttl_ms=ttl_ms)
    with pytest.raises(SpecError) as err:
        specs.load_local("staging", write(tmp_path, doc))
    message = str(err.value)
    assert "\n" not in message and "stacks.staging.endpoint.ttl_ms" in message
    assert f"execution_timeout_ms ({execution_timeout_ms})" in message
    assert f"at least {execution_timeout_ms + specs.MIN_QUEUE_WAIT_MS}" in message


def test_a_ttl_leaving_room_to_queue_beyond_the_execution_timeout_loads(tmp_path: Path) -> None:
    doc = local_doc()
    doc["stacks"]["staging"]["endpoint"].update(execution_timeout_ms=600_000, ttl_ms=1_200_000)
    assert specs.load_local("staging", write(tmp_path, doc)).endpoint.ttl_ms == 1_200_000
    doc["stacks"]["staging"]["endpoint"].pop("ttl_ms")  # the default (24 h) leaves room for the longest timeout
    doc["stacks"]["staging"]["endpoint"]["execution_timeout_ms"] = 86_400_000 - specs.MIN_QUEUE_WAIT_MS
    assert specs.load_local("staging", write(tmp_path, doc)).endpoint.ttl_ms == 86_400_000


@pytest.mark.parametrize(("name", "role"), [("prod", "staging"), ("staging", "prod")])
def test_a_stack_named_after_a_role_must_have_that_role(tmp_path: Path, name: str, role: str) -> None:
    # `prod` with role staging would lose PROD's protections and take candidate images straight from
    # `goldgate deploy prod`; `staging` with role prod would make the stack under test the one promoted to.
    doc = local_doc()
    doc["stacks"][name]["role"] = role
    with pytest.raises(SpecError) as err:
        specs.load_local(name, write(tmp_path, doc))
    message = str(err.value)
    assert "\n" not in message and f"stacks.{name}.role: '{role}' contradicts the stack's name '{name}'" in message
    cloud = copy.deepcopy(doc["stacks"][name])
    cloud.pop("local")
    cloud.update(image=DIGEST, cloud={"cloudflare_account_id": "0" * 32})
    with pytest.raises(SpecError, match=f"goldgate:spec.role: '{role}' contradicts the stack's name '{name}'"):
        specs.from_pulumi_config(name, cloud)


def test_a_stack_with_another_name_may_take_either_role(tmp_path: Path) -> None:
    doc = local_doc()
    doc["stacks"]["staging-b"] = {**copy.deepcopy(doc["stacks"]["staging"]), "role": "staging"}
    doc["stacks"]["prod-eu"] = {**copy.deepcopy(doc["stacks"]["prod"]), "role": "prod"}
    assert specs.load_local("staging-b", write(tmp_path, doc)).role == "staging"
    assert specs.load_local("prod-eu", write(tmp_path, doc)).is_prod
