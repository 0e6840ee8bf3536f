"""Golden case files that would make a golden test unable to fail, or race, or that an operator gets subtly
wrong: each is refused at load on one line naming the file and the field."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from ci_policy import require
from release_support import write_case

from goldgate.release.cases import CaseError, load_case, load_cases

GOOD = "workflow: wf-a\ninputs: {prompt: p1, seed: 1}\n"


def refused(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(CaseError) as err:
        load_case(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


@pytest.mark.parametrize(("field", "value", "largest"), [
    ("max_hash_distance", "64", 63),   # dHash has 64 bits: a distance is never more than 64
    ("max_color_distance", "255", 254),  # a mean colour difference of 0..255 values is never more than 255
    ("max_color_distance", "300", 254),
])
def test_a_threshold_that_lets_every_render_pass_is_refused_naming_the_largest_that_tests(
        tmp_path: Path, field: str, value: str, largest: int) -> None:
    message = refused(tmp_path, f"{GOOD}expect: {{{field}: {value}}}\n")
    assert f"expect.{field}: {value} lets every render pass" in message, message
    assert f"the largest value that still tests something is {largest}" in message, message


@pytest.mark.parametrize(("field", "value"), [("max_hash_distance", 63), ("max_color_distance", 254)])
def test_the_largest_threshold_that_can_still_fail_is_taken(tmp_path: Path, field: str, value: int) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"{GOOD}expect: {{{field}: {value}}}\n")
    assert getattr(load_case(path).expect, field) == value


def test_a_case_asking_for_more_time_than_its_stack_allows_is_refused(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    write_case(cases, "slow", GOOD + "expect: {max_latency_s: 900}\n")
    write_case(cases, "quick", GOOD + "expect: {max_latency_s: 60}\n")
    assert [c.id for c in load_cases(cases)] == ["quick", "slow"]  # no stack named: nothing to compare with
    with pytest.raises(CaseError) as err:
        load_cases(cases, stack_latency_s=600)
    message = str(err.value)
    assert message.startswith(f"{cases / 'slow.yaml'}: expect.max_latency_s: 900 s is more than the stack's "
                              "golden_case_latency_s (600 s)"), message
    assert [c.id for c in load_cases(cases, stack_latency_s=900)] == ["quick", "slow"]


def test_a_case_above_the_limit_outside_the_smoke_subset_does_not_stop_the_smoke_suite(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    write_case(cases, "slow", GOOD + "expect: {max_latency_s: 900}\n")
    write_case(cases, "smoke", GOOD + "smoke: true\n")
    assert [c.id for c in load_cases(cases, smoke_only=True, stack_latency_s=600)] == ["smoke"]


@pytest.mark.parametrize("reference", ["shared.png", "SHARED.png"])
def test_two_cases_naming_one_reference_are_refused(tmp_path: Path, reference: str) -> None:
    cases = tmp_path / "cases"
    write_case(cases, "a", GOOD + "expect: {reference: shared.png}\n")
    write_case(cases, "b", GOOD + f"expect: {{reference: {reference}}}\n")
    with pytest.raises(CaseError) as err:
        load_cases(cases)
    assert str(err.value) == (f"{cases / 'b.yaml'}: expect.reference {reference} is also the reference of case a "
                              f"({cases / 'a.yaml'}); give each case its own reference image")


def test_a_reference_named_after_another_case_is_that_case_s_reference(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    write_case(cases, "a", GOOD)
    write_case(cases, "b", GOOD + "expect: {reference: a.png}\n")
    with pytest.raises(CaseError, match=r"b\.yaml: expect\.reference a\.png is also the reference of case a "):
        load_cases(cases)


@pytest.mark.parametrize(("text", "words"), [
    ('id: "abc\\n"\nworkflow: wf\n', "id 'abc\\n'"),
    ('workflow: "wf\\n"\n', "workflow is required"),
    ('workflow: wf\nexpect: {reference: "x.png\\n"}\n', "expect.reference"),
    ('workflow: wf\nexpect: {content_type: "image/png\\n"}\n', "expect.content_type"),
])
def test_a_name_with_a_trailing_newline_is_refused(tmp_path: Path, text: str, words: str) -> None:
    assert words in refused(tmp_path, text)


@pytest.mark.parametrize(("text", "words"), [
    ("workflow: wf\ninputs: []\n", "inputs must be a mapping"),
    ("workflow: wf\ninputs: 0\n", "inputs must be a mapping"),
    ("workflow: wf\nexpect: []\n", "expect must be a mapping"),
    ("workflow: wf\nexpect: false\n", "expect must be a mapping"),
    ('workflow: wf\nexpect: ""\n', "expect must be a mapping"),
    ("workflow: wf\ndescription: [a, b]\n", "description must be text"),
])
def test_an_empty_value_of_the_wrong_kind_is_refused_not_read_as_none(tmp_path: Path, text: str,
                                                                       words: str) -> None:
    assert words in refused(tmp_path, text)


def test_an_empty_inputs_or_expect_still_means_none(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("workflow: wf\ninputs:\nexpect:\n")
    case = load_case(path)
    assert case.inputs == {} and case.expect.images == 1


def test_an_input_name_with_a_newline_stays_on_one_line(tmp_path: Path) -> None:
    assert "inputs.'a\\nb': expected a string" in refused(tmp_path, 'workflow: wf\ninputs: {"a\\nb": [1]}\n')


def test_a_file_name_that_is_no_case_id_says_so(tmp_path: Path) -> None:
    path = tmp_path / "Café.yaml"
    path.write_text(GOOD)
    with pytest.raises(CaseError) as err:
        load_case(path)
    assert str(err.value) == (f"{path}: the file name gives the case id 'Café': an id is 1 to 64 lowercase "
                              "letters, digits, '.', '_' or '-'; rename the file or set `id:`")


def test_dimensions_the_runner_would_never_decode_are_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, GOOD + "expect: {width: 16384, height: 16384}\n")
    assert "expect.width x height is 268435456 pixels, more than the 64000000 the golden runner decodes" in message


def test_an_overlong_reference_name_is_refused_at_load(tmp_path: Path) -> None:
    assert "expect.reference" in refused(tmp_path, GOOD + f"expect: {{reference: {'r' * 300}.png}}\n")


def test_a_named_pipe_among_the_cases_is_named_not_waited_on(tmp_path: Path) -> None:
    require(hasattr(os, "mkfifo"), "named pipes (os.mkfifo)")
    cases = tmp_path / "cases"
    write_case(cases, "a", GOOD)
    fifo = cases / "b.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_cases(cases)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 -- handed to the test's thread
            outcome.append(exc)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    loader.join(10)
    if loader.is_alive():  # stuck opening the pipe: let it go (a writer that closes at once), then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        loader.join(10)
        pytest.fail("load_cases waited on a named pipe among the case files")
    assert isinstance(outcome[0], CaseError), outcome
    assert str(outcome[0]).startswith(f"{fifo}: not a regular file"), outcome
