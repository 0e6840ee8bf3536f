"""Golden case validation and the docker push stream parser (no engine needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.release.build import PushFailed, ReleaseIdentity, manifest_sha256, parse_push_stream
from goldgate.release.cases import GOLDEN_DIR, CaseError, load_case, load_cases

DIGEST = "sha256:" + "d" * 64


def case_file(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_the_shipped_cases_load_and_have_a_smoke_subset() -> None:
    cases = load_cases(GOLDEN_DIR / "cases")
    smoke = load_cases(GOLDEN_DIR / "cases", smoke_only=True)
    assert len(cases) >= 4 and 1 <= len(smoke) < len(cases)
    assert {c.workflow for c in cases} >= {"sdxl-txt2img", "flux-schnell-lora"}
    for c in cases:
        assert (GOLDEN_DIR / "references" / "local" / c.reference_name).is_file(), f"{c.id} has no reference image"


@pytest.mark.parametrize(("text", "words"), [
    ("- a list\n", "expected a mapping"),
    ("workflow: wf\nexpect: {images: 0}\n", "expect.images: expected an integer in [1, 64]"),
    ("workflow: wf\nexpect: {widht: 5}\n", "expect: unknown field(s) widht"),
    ("inputs: {}\n", "workflow is required"),
    ("workflow: wf\nexpect: {status: failed}\n", "only `completed`"),
    ("workflow: wf\nexpect: {reference: ../../etc/passwd.png}\n", "no directories"),
    ("workflow: wf\nexpect: {min_bytes: 10, max_bytes: 5}\n", "min_bytes exceeds"),
    ("workflow: wf\nsmoke: yes please\n", "smoke must be true or false"),
    ("workflow: wf\nexpect: {max_latency_s: -1}\n", "max_latency_s"),
    ("workflow: [unclosed\n", "not valid YAML"),
    ("workflow: wf\nbogus: 1\n", "unknown field(s) bogus"),
])
def test_bad_case_files_are_refused_naming_file_and_field(tmp_path: Path, text: str, words: str) -> None:
    path = case_file(tmp_path, text)
    with pytest.raises(CaseError) as err:
        load_case(path)
    assert str(path) in str(err.value) and words in str(err.value)


def test_an_oversized_case_file_and_duplicate_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="larger than"):
        load_case(case_file(tmp_path, "workflow: wf\n#" + "x" * 300_000))
    d = tmp_path / "dup"
    d.mkdir()
    case_file(d, "id: same\nworkflow: wf\n", "one.yaml")
    case_file(d, "id: same\nworkflow: wf\n", "two.yaml")
    with pytest.raises(CaseError, match="is also used by"):
        load_cases(d)
    with pytest.raises(CaseError, match="does not exist"):
        load_cases(tmp_path / "nope")


def test_the_push_digest_comes_from_the_final_aux_line() -> None:
    lines = [{"status": "The push refers to repository [127.0.0.1:5000/w]"},
             {"status": "Pushing", "progressDetail": {"current": 1}, "id": "abc"},
             {"status": "Pushed", "id": "abc"},
             {"status": f"t: digest: {DIGEST} size: 528"},
             {"progressDetail": {}, "aux": {"Tag": "t", "Digest": DIGEST, "Size": 528}}]
    seen: list[str] = []
    assert parse_push_stream(iter(lines), seen.append) == DIGEST
    assert "push: abc Pushed" in seen


@pytest.mark.parametrize(("lines", "words"), [
    ([{"status": "Pushing"}, {"errorDetail": {"message": "denied: requested access to the resource is denied"},
                               "error": "denied: requested access to the resource is denied"}], "denied"),
    ([{"errorDetail": {"message": "blob upload unknown"}}], "blob upload unknown"),
    ([{"status": "Pushed"}], "without a digest"),
    ([{"aux": {"Digest": "sha256:short"}}], "without a digest"),
    ([{"aux": {"Digest": DIGEST}}, {"error": "late failure"}], "late failure"),
    (["not a dict"], "unexpected push stream line"),
])
def test_a_failed_or_unconfirmed_push_raises(lines: list, words: str) -> None:
    with pytest.raises(PushFailed, match=words):
        parse_push_stream(iter(lines))


def test_the_release_tag_is_derived_from_version_commit_and_manifest(tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text("models: []\n")
    sha = manifest_sha256(tmp_path)
    ident = ReleaseIdentity("2026.11.0", "0123456789abcdef0123", sha)
    assert ident.tag == f"2026.11.0-g0123456789ab-m{sha[:12]}"
    (tmp_path / "models.yaml").write_text("models: [x]\n")
    assert manifest_sha256(tmp_path) != sha


def test_a_huge_number_in_a_case_file_is_named_not_a_traceback(tmp_path: Path) -> None:
    path = case_file(tmp_path, "workflow: wf\nexpect: {width: " + "9" * 5000 + "}\n")
    with pytest.raises(CaseError, match="not valid YAML") as err:
        load_case(path)
    assert str(path) in str(err.value) and "5000 digits" in str(err.value) and "sys." not in str(err.value)
    with pytest.raises(CaseError, match=r"not valid YAML at line 2, column 1: expected ',' or '\]'") as err:
        load_case(case_file(tmp_path, "workflow: [oops\n"))
    assert "\n" not in str(err.value)  # one line for the one-line error


def _bomb_under_description(rest: str) -> str:
    from test_bad_input import BOMB

    return "description:\n" + "".join(f"  {line}\n" for line in BOMB.splitlines()) + rest


@pytest.mark.parametrize(("rest", "words"), [
    ("id: *i\nworkflow: wf\n", "id"),
    ("workflow: *i\n", "workflow"),
    ("workflow: wf\nexpect: {width: *i}\n", "expect.width"),
    ("workflow: wf\nexpect: {content_type: *i}\n", "expect.content_type"),
    ("workflow: wf\ninputs: {prompt: *i}\n", "inputs.prompt"),
])
def test_a_yaml_alias_bomb_in_a_case_file_is_refused_quickly(tmp_path: Path, rest: str, words: str) -> None:
    path = case_file(tmp_path, _bomb_under_description(rest))
    with pytest.raises(CaseError) as err:
        load_case(path)
    assert str(path) in str(err.value) and words in str(err.value) and len(str(err.value)) < 2000


@pytest.mark.parametrize("value", ["[a, b]", "{x: 1}", ".nan", ".inf", "null"])
def test_a_case_input_must_be_a_value_a_workflow_parameter_takes(tmp_path: Path, value: str) -> None:
    with pytest.raises(CaseError, match="inputs.seed"):
        load_case(case_file(tmp_path, f"workflow: wf\ninputs: {{prompt: ok, seed: {value}}}\n"))
    case = load_case(case_file(tmp_path, "workflow: wf\ninputs: {prompt: ok, seed: 3, cfg: 1.5, hires: true}\n"))
    assert case.inputs == {"prompt": "ok", "seed": 3, "cfg": 1.5, "hires": True}
