"""What the review-24 sweep of hostile command-line values found, each pinned on its own: a value refused before the
command reads, writes or asks anything, in one line naming the option.

- `metrics --html -` wrote a file named `-` into the working directory (a `-` reads as stdout), and `--html` or
  `demo --out` holding a newline or an escape sequence created a file or directory by that name.
- `metrics --target cloud --html FILE` read the rows from the cloud's D1 before refusing a FILE it would not
  overwrite.
- `promote --report <the reports directory>` said the directory "is not a readable golden report
  (IsADirectoryError: [Errno 21] Is a directory: 3); run `goldgate golden staging` again": a file descriptor's
  number, and advice to rerun a golden run that was fine.
- `dr-restore --backup <a mistyped path>` made the state dir, the stack's dir and two lock files before it found
  there was no backup."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.local.platform import LocalPlatform
from goldgate.migrations import apply_sqlite, apply_with


def run(argv: list[str]) -> int:
    """The exit code of `goldgate <argv>`: a usage error exits (2) from inside the parser."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A state dir whose STAGING has a database (no jobs yet): `metrics staging` reads it and succeeds."""
    home = tmp_path / "home"
    db = LocalPlatform(home).db_path("staging")
    db.parent.mkdir(parents=True)
    apply_sqlite(db)
    return home


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_metrics_html_dash_is_refused_rather_than_written_as_a_file_named_dash(home, workdir, capsys) -> None:
    assert run(["metrics", "staging", "--home", str(home), "--html", "-"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("goldgate metrics: error: argument --html: '-' is no stdout here")
    assert "Traceback" not in err
    assert _tree(workdir) == []


@pytest.mark.parametrize("name", ["report\n.html", "\x1b[31mreport.html", "report\r.html"])
def test_metrics_html_holding_a_control_character_is_refused_and_nothing_is_written(home, workdir, capsys,
                                                                                   name: str) -> None:
    assert run(["metrics", "staging", "--home", str(home), "--html", name]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("goldgate metrics: error: argument --html: ") and "holds a control character" in last
    assert _tree(workdir) == []


def test_metrics_html_with_an_ordinary_name_is_still_written(home, workdir, capsys) -> None:
    assert run(["metrics", "staging", "--home", str(home), "--html", "metrics-é.html"]) == 0
    assert (workdir / "metrics-é.html").read_text(encoding="utf-8").startswith("<!doctype html>")


def test_demo_out_holding_a_newline_is_refused_before_any_stack_starts(tmp_path, workdir, monkeypatch,
                                                                      capsys) -> None:
    from goldgate.commands import local

    def no_stack(*args: object, **kwargs: object) -> None:
        raise AssertionError("demo began to bring a stack up")

    monkeypatch.setattr(local, "ensure_up", no_stack)
    home = tmp_path / "demo-home"
    assert run(["demo", "--home", str(home), "--out", "results\nnew"]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("goldgate demo: error: argument --out: 'results\\nnew' holds a control character")
    assert not home.exists() and _tree(workdir) == []


def test_promote_report_naming_a_directory_says_so_and_names_the_report_in_it(tmp_path, capsys) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    home = tmp_path / "home"
    assert run(["promote", "--check", "--home", str(home), "--report", str(reports)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line == (f"goldgate: error: --report {reports} is a directory; name the golden report file in it, e.g. "
                    f"{reports / 'latest.json'}")
    assert not home.exists()


def test_dr_restore_of_a_mistyped_backup_writes_nothing_under_the_state_dir(tmp_path, capsys) -> None:
    home = tmp_path / "home"
    missing = tmp_path / "backups" / "staging" / "20261201T000000Z.sqlite"
    assert run(["dr-restore", "staging", "--home", str(home), "--backup", str(missing)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"goldgate: error: no backup at {missing}: check the path")
    assert not home.exists(), _tree(home)


def test_dr_restore_of_a_backup_without_its_manifest_leaves_an_existing_home_as_it_was(tmp_path, capsys) -> None:
    home = tmp_path / "home"
    home.mkdir()
    backup = tmp_path / "copied.sqlite"
    backup.write_bytes(b"SQLite format 3\x00")
    assert run(["dr-restore", "staging", "--home", str(home), "--backup", str(backup)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"goldgate: error: backup {backup} has no manifest")
    assert _tree(home) == []


CF_TOKEN = "cf-review24-clifuzz-token-0123456789abcdef"


def test_metrics_on_the_cloud_refuses_html_before_asking_d1(tmp_path, monkeypatch, capsys) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # no https:// call leaves this machine
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", CF_TOKEN)
    precious = tmp_path / "notes.txt"
    precious.write_text("not a report\n")
    with D1StandIn(CF_TOKEN) as d1, CloudflareApi(CF_TOKEN, d1.api_base) as api:
        client = D1Client(api, d1.account_id, poll_interval_s=0.0)
        database = client.create_database("goldgate-staging").uuid
        apply_with(lambda sql, params: client.query(database, sql, params))  # a D1 metrics could read
        before = len(d1.requests)
        doc = yaml.safe_load((specs.STACKS_DIR / "Pulumi.staging.yaml").read_text())
        doc["config"]["goldgate:spec"]["cloud"]["cloudflare_account_id"] = d1.account_id
        stacks = tmp_path / "stacks"
        stacks.mkdir()
        (stacks / "Pulumi.staging.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        code = run(["metrics", "staging", "--target", "cloud", "--stacks-dir", str(stacks), "--home",
                     str(tmp_path / "home"), "--cloudflare-api-base", d1.api_base, "--html", str(precious)])
        asked = d1.requests[before:]
    assert asked == [], "D1 was asked for the rows of a report the command then refused to write"
    [line] = capsys.readouterr().err.splitlines()
    assert code == 1
    assert line.startswith(f"goldgate: error: --html {precious} exists and is not an HTML report goldgate wrote")
    assert precious.read_text() == "not a report\n"


@pytest.mark.parametrize("repo", ["goldgate--worker", "a__b", "registry.example:5000/team/goldgate--worker",
                                  "goldgate.worker", "goldgate_worker"])
def test_a_repository_name_docker_takes_is_taken(repo: str) -> None:
    from goldgate.release.build import check_repo

    check_repo(repo)  # Docker's separators: `.`, `_`, `__` or a run of `-`
