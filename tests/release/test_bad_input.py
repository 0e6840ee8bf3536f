"""Corrupted, hand-edited and hostile input to the release path: a clear refusal, never a traceback or a hang."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from test_cli_errors import one_error_line, run

from goldgate import spec as specs
from goldgate.errors import SpecError
from goldgate.release.gate import ErrorRate, evaluate
from goldgate.release.ledger import Ledger, LedgerTampered
from goldgate.release.report import ReportError, load_report
from goldgate.spec import Thresholds

A = "local/worker@sha256:" + "a" * 64
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def report(**over: object) -> dict:
    return {"schema": "goldgate.golden-report.v1", "suite": "full", "stack": "staging", "image": A, "passed": True,
            "failures": [], "finished_at": (NOW - timedelta(minutes=5)).isoformat(), "latency_s": {"mean": 1.0},
            **over}


@pytest.mark.parametrize("over", [{"latency_s": [12.5]}, {"latency_s": "fast"},
                                  {"passed": False, "failures": 3}, {"passed": False, "failures": {"a": "b"}}])
def test_a_report_with_fields_of_the_wrong_shape_is_refused_not_a_crash(over: dict) -> None:
    d = evaluate(report(**over), A, Thresholds(), ErrorRate(10, 0, "t"), now=NOW)
    assert not d.passed


@pytest.mark.parametrize("content", [b'{"schema": "\xff\xfe"}', b"[" * 100_000, b'{"n": ' + b"9" * 5000 + b"}"])
def test_promote_refuses_a_corrupted_report_in_one_line(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                         content: bytes) -> None:
    bad = tmp_path / "latest.json"
    bad.write_bytes(content)
    with pytest.raises(ReportError, match="not a readable golden report"):
        load_report(bad)
    code, _, err = run(capsys, tmp_path, "promote", "--report", str(bad))
    assert code == 1 and str(bad) in one_error_line(err)


@pytest.mark.parametrize("garbage", [b"\xff\xfe\x00 not text\n", b"[" * 100_000 + b"\n",
                                     b'{"seq": ' + b"9" * 5000 + b"}\n"])
def test_a_corrupted_ledger_line_is_named_and_nothing_is_appended(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                                  garbage: bytes) -> None:
    ledger = Ledger(tmp_path)
    ledger.append("build", image=A, release_id="r1")
    with ledger.path.open("ab") as fh:
        fh.write(garbage)
    before = ledger.path.read_bytes()
    with pytest.raises(LedgerTampered, match=r"ledger\.jsonl:2"):
        ledger.entries()
    with pytest.raises(LedgerTampered):
        ledger.append("build", image=A, release_id="r2")
    code, _, err = run(capsys, tmp_path, "history")
    assert code == 1 and "ledger.jsonl:2" in one_error_line(err)
    assert ledger.path.read_bytes() == before


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_history_limit_must_be_a_positive_count(capsys: pytest.CaptureFixture, tmp_path: Path, limit: str) -> None:
    for n in range(3):
        Ledger(tmp_path).append("build", image=A, release_id=f"r{n}")
    with pytest.raises(SystemExit) as exc:
        run(capsys, tmp_path, "history", "--json", "--limit", limit)
    assert exc.value.code == 2 and "--limit" in capsys.readouterr().err


@pytest.mark.parametrize("image", [A + "\n", A + " ", " " + A])
def test_an_image_ref_with_stray_whitespace_is_not_a_digest(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                            image: str) -> None:
    assert not specs.is_digest_ref(image)
    with pytest.raises(SystemExit) as exc:  # refused as the arguments are read, as promote --image is
        run(capsys, tmp_path, "deploy", "staging", "--image", image)
    assert exc.value.code == 2 and "is not pinned by digest" in capsys.readouterr().err


def _stack_file(tmp_path: Path, edit: object = None, text: str | None = None) -> Path:
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    if callable(edit):
        edit(doc["stacks"]["staging"])
    path = tmp_path / "local.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(doc))
    return path


# Nine aliases per level, nine levels: a few hundred bytes of YAML that stand for 9**9 strings.
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True))


@pytest.mark.parametrize(("make", "words"), [
    (lambda p: p.write_bytes(("# café\n" + specs.LOCAL_STACKS_FILE.read_text()).encode("latin-1")), "not UTF-8"),
    (lambda p: p.mkdir(), "is a directory, not a file"),
    (lambda p: p.write_text("stacks:\n  staging:\n    role: staging\n    n: " + "9" * 5000 + "\n"), "not valid YAML"),
    (lambda p: p.write_text("stacks: " + "[" * 5000 + "\n"), "not valid YAML"),
])
def test_an_unreadable_stack_file_is_a_spec_error(tmp_path: Path, make: object, words: str) -> None:
    path = tmp_path / "local.yaml"
    make(path)  # type: ignore[operator]
    with pytest.raises(SpecError, match=words):
        specs.load_local("staging", path)


def test_unknown_keys_of_mixed_types_are_named_not_a_crash(tmp_path: Path) -> None:
    path = _stack_file(tmp_path, lambda s: s.update({1: "x", "surprise": "y"}))
    with pytest.raises(SpecError, match="unknown field"):
        specs.load_local("staging", path)
    doc = yaml.safe_load(path.read_text())
    doc["stacks"][7] = {}
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match="no stack named 'qa'"):
        specs.load_local("qa", path)


@pytest.mark.parametrize("field", ["role", "endpoint.gpu_pools"])
def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path: Path, field: str) -> None:
    text = specs.LOCAL_STACKS_FILE.read_text()
    text = (text.replace("    role: staging\n", "    role: *i\n", 1) if field == "role"
            else text.replace('gpu_pools: ["ADA_24"]', "gpu_pools: *i", 1))
    path = _stack_file(tmp_path, text=BOMB + text)
    with pytest.raises(SpecError) as exc:
        specs.load_local("staging", path)
    assert len(str(exc.value)) < 2000


@pytest.mark.parametrize("key", ["error_rate", "golden_mean_latency_s"])
def test_a_threshold_that_is_not_a_number_is_refused(tmp_path: Path, key: str) -> None:
    path = _stack_file(tmp_path, lambda s: s["thresholds"].update({key: float("nan")}))
    with pytest.raises(SpecError, match=f"thresholds.{key}"):
        specs.load_local("staging", path)


def test_promote_check_answers_a_report_of_the_wrong_shape(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    bad = tmp_path / "latest.json"
    bad.write_text(json.dumps(report(latency_s=[1])))
    code, _, err = run(capsys, tmp_path, "promote", "--check", "--report", str(bad))
    assert code == 1 and "Traceback" not in err


@pytest.mark.parametrize("value", ["30m", "nan", "inf", "-5"])
def test_a_bad_rollout_timeout_in_the_environment_is_named(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("GOLDGATE_ROLLOUT_TIMEOUT_S", value)
    code, _, err = run(capsys, tmp_path, "promote", "--target", "cloud", "--check")
    assert code == 1 and "GOLDGATE_ROLLOUT_TIMEOUT_S" in one_error_line(err)


@pytest.mark.parametrize(("section", "key", "name"), [
    ("storage", "bucket", "goldgate-staging-results-"),   # R2: must end with a letter or digit
    ("storage", "bucket", "-goldgate-results"),
    ("storage", "bucket", "ab"),                          # R2: 3-63 characters
    ("storage", "bucket", "b" * 64),
    ("storage", "bucket", "goldgate_results"),            # R2: lowercase letters, digits and hyphens only
    ("api", "script_name", "goldgate-api-staging-"),      # Workers: must end with a letter or digit
])
def test_a_cloud_resource_name_the_vendor_refuses_is_refused_before_anything_is_created(
        tmp_path: Path, section: str, key: str, name: str) -> None:
    path = _stack_file(tmp_path, lambda s: s[section].update({key: name}))
    with pytest.raises(SpecError, match=f"stacks.staging.{section}.{key}") as exc:
        specs.load_local("staging", path)
    assert "letter or digit" in str(exc.value)


@pytest.mark.parametrize(("section", "key", "name"), [
    ("storage", "bucket", "abc"), ("storage", "bucket", "0-results-9"), ("storage", "bucket", "b" * 63),
    ("api", "script_name", "goldgate-api-2"),
])
def test_a_cloud_resource_name_the_vendor_takes_is_accepted(tmp_path: Path, section: str, key: str,
                                                            name: str) -> None:
    path = _stack_file(tmp_path, lambda s: s[section].update({key: name}))
    assert specs.load_local("staging", path).resource_names()["bucket" if key == "bucket" else "script"] == name
