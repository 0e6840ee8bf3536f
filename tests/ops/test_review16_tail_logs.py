"""The checklist judges the newest log lines of an old stack, not its oldest, and reads a bounded part of its logs."""

from __future__ import annotations

import io
import os

from ci_policy import require

from goldgate.logs import JsonLogger
from goldgate.ops.checklist_facts import read_log_facts

IMG = "local/worker@sha256:" + "b" * 64
MB = 1024 * 1024


def _valid_lines(event: str = "job.completed", count: int = 1) -> bytes:
    out = io.StringIO()
    log = JsonLogger("worker", out, stack="staging", workflow_version="sdxl-txt2img@1.0.0", worker_image_tag=IMG)
    for _ in range(count):
        if event == "models_loaded":
            log.info("models_loaded", message="6 model files present")
        else:
            log.bind(job_id="job-1", trace_id="0" * 32).info(event, status="completed")
    return out.getvalue().encode()


def _repeat(line: bytes, size: int) -> bytes:
    return line * (size // len(line) + 1)


def test_an_old_stack_whose_old_lines_are_bad_and_newest_lines_good_passes(tmp_path):
    # A release that fixed its logging: lines written before it are not what the image served now logs.
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "service.jsonl").write_bytes(_repeat(b"INFO  | an old unstructured line\n", MB)
                                         + _repeat(_valid_lines(), 3 * MB))
    facts = read_log_facts(logs)
    assert facts.invalid_count == 0 and facts.lines > 1000
    assert facts.job_ids == 1 and facts.jobs_without_context == ()


def test_an_old_stack_whose_newest_lines_are_bad_fails_and_names_them_from_the_end(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "service.jsonl").write_bytes(_repeat(_valid_lines(), 3 * MB) + b"INFO  | a new unstructured line\n"
                                         + _valid_lines())
    facts = read_log_facts(logs)
    assert facts.invalid_count == 1
    # `tail -n 2 service.jsonl | head -n 1` shows it
    assert facts.invalid[0].startswith("service.jsonl:2 from the end: not JSON"), facts.invalid


def test_a_worker_started_long_ago_keeps_its_start_up_line_though_its_log_outgrew_what_is_judged(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "worker-abc.log").write_bytes(_valid_lines("models_loaded") + _repeat(_valid_lines(), 3 * MB))
    facts = read_log_facts(logs)
    assert facts.models_loaded_by_image == {IMG: 1} and facts.invalid_count == 0


def _bytes_read() -> int:
    with open("/proc/self/io") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("rchar:"))


def test_the_bytes_read_stay_bounded_for_a_large_log_and_the_evidence_says_what_was_judged(tmp_path):
    require(os.path.exists("/proc/self/io"), "/proc/self/io (the bytes a process read)")
    logs = tmp_path / "logs"
    logs.mkdir()
    # 64 MB of lines (blank: the old reader skipped them quickly but read them all), its newest lines valid.
    with (logs / "service.jsonl").open("wb") as fh:
        fh.write(_repeat(b" " * 1023 + b"\n", 64 * MB))
        fh.write(_repeat(_valid_lines(), MB // 2))
    size = (logs / "service.jsonl").stat().st_size
    read_log_facts(tmp_path / "elsewhere")  # the validator and imports loaded: only the log's reads are counted
    before = _bytes_read()
    facts = read_log_facts(logs)
    read = _bytes_read() - before
    assert read < 8 * MB, f"{read} bytes read for a {size}-byte log"
    assert facts.invalid_count == 0 and facts.lines > 1000
    assert facts.bytes_total == size and facts.bytes_judged < 8 * MB and facts.files_judged == 1
    words = facts.judged_words()
    assert f"the newest {facts.lines} lines" in words and "of 64.5 MB" in words, words


def test_a_small_log_is_judged_whole_and_says_nothing_more(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "service.jsonl").write_bytes(_valid_lines(count=3) + b"not json\n")
    facts = read_log_facts(logs)
    assert facts.lines == 4 and facts.invalid == ("service.jsonl:4: not JSON",)
    assert facts.judged_words() == ""


def test_the_end_of_every_recent_log_is_judged_and_the_newest_log_most_deeply(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    good = _repeat(_valid_lines(), 3 * MB)
    bad_near_end = good + b"not json\n" + _repeat(_valid_lines(), 256 * 1024)  # 256 KB before the end
    files = {"worker-new.log": bad_near_end, "worker-old.log": good + b"not json\n", "worker-older.log": bad_near_end}
    for i, (name, body) in enumerate(files.items()):
        (logs / name).write_bytes(body)
        os.utime(logs / name, (1_700_000_000 - 86_400 * i, 1_700_000_000 - 86_400 * i))
    facts = read_log_facts(logs)
    # the newest log deeply (its bad line 256 KB before its end), an older one's last line; the oldest only at its
    # very end (its bad line lies deeper than the share every log gets)
    assert facts.invalid_count == 2, facts.invalid
    assert facts.invalid[0].startswith("worker-new.log:") and facts.invalid[1] == "worker-old.log:1 from the end: not JSON"
    assert facts.files == facts.files_judged == 3 and facts.bytes_judged == 4 * MB
    assert facts.bytes_total == sum(len(body) for body in files.values())


def test_logs_past_what_is_judged_are_counted_by_size_only(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(80):  # a stack's worker logs: the oldest beyond what is judged
        path = logs / f"worker-{i:03d}.log"
        path.write_bytes((b"not json\n" if i == 0 else b"") + _repeat(_valid_lines(), 100 * 1024))
        os.utime(path, (1_700_000_000 + i, 1_700_000_000 + i))
    facts = read_log_facts(logs)
    assert facts.invalid_count == 0 and facts.files == 80 and facts.files_judged < 80
    assert facts.bytes_judged == 4 * MB and facts.bytes_total == sum(p.stat().st_size for p in logs.iterdir())
    assert "of 80 logs" in facts.judged_words()
