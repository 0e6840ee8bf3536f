"""One end-to-end sweep for the bar "secrets never reach logs, reports, job input or git".

A state home is set up as the README's first command uses one (`goldgate release` on the local target),
except that every secret a local stack reads is a recognisable canary, written into its `secrets/` files
first, and the operator's shell holds canary cloud credentials, ledger key and save token. The release runs
as a user runs it (a `goldgate` process each time), then the commands an operator runs that print or write
(status, history, metrics, stuck, checklist, doctor, dr-drill, prune, recover, cancel, demo, up, down,
dr-restore), with and without --json. Then all they produced is searched for each canary, plain, hex, base64
and URL-encoded: every file under the state home, the golden reports, the metrics page and demo results,
every stdout and stderr, every job's stored input, each /run body the RunPod emulator received (recorded by a
sitecustomize in the stack hosts, which changes nothing they do), the environment of every process the stacks
run, and that of the ledger's save script (the way to git). Signed webhook and result URLs must carry an HMAC,
never a secret.

Files whose job is to hold secrets, and so are not findings:
- stacks/<stack>/secrets/*: the stack's secrets themselves (written by the operator, or by `up`).
- stacks/<stack>/service.json: the config the stack host hands its service; it holds the API token, the
  webhook secrets, the RunPod key and the S3 keys as a Cloudflare Worker holds its secret bindings.
  Owner-only (checked: 0600).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sqlite3
import stat
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from processes import kill_everything_naming, processes_naming

from service.signing import result_signature, webhook_signature

REPO = Path(__file__).resolve().parents[2]
STACKS = ("staging", "prod")
SECRET_FILES = ("api_token", "webhook_secret", "webhook_secret_previous", "runpod_api_key",
                "s3_access_key_id", "s3_secret_access_key")
# What an operator's shell may hold when it runs a local release: the ledger's key and save token, and the
# cloud credentials the cloud target reads (none of which a local stack needs).
ENV_SECRETS = ("GOLDGATE_LEDGER_KEY", "GOLDGATE_LEDGER_SAVE_TOKEN", "CLOUDFLARE_API_TOKEN", "RUNPOD_API_KEY",
               "GOLDGATE_API_TOKEN", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "PULUMI_CONFIG_PASSPHRASE",
               "AWS_SECRET_ACCESS_KEY", "HF_TOKEN")

# Loaded by every Python process of the run that has the sweep's directory on PYTHONPATH; it acts only where
# SWEEP_RUN_RECORD is set (the CLI and the stack hosts, not the workers, whose environment is a fixed list):
# it appends each /run and /runsync body the RunPod emulator receives to that file, then answers as ever.
# It patches the emulator's module when that module is imported (the stack hosts, which run the emulator), not
# at start-up: importing it in each of the thirty-odd CLI processes, which never run it, cost about 0.17 s of
# CPU apiece.
RECORDER = '''
import os

_path = os.environ.get("SWEEP_RUN_RECORD")
if _path:
    import importlib.abc, importlib.util, json, sys, threading

    _MODULE = "goldgate.local.runpod.server"
    _lock = threading.Lock()

    def _recording(handler):
        def run(self, req):
            with _lock, open(_path, "a", encoding="utf-8") as out:
                out.write(json.dumps({"stack": self.backend.config.stack, "path": req.path,
                                      "body": req.body.decode("utf-8", "replace")}) + "\\n")
            return handler(self, req)
        return run

    def _patch(server):
        server.RunPodApp.run = _recording(server.RunPodApp.run)
        server.RunPodApp.runsync = _recording(server.RunPodApp.runsync)

    class _PatchOnImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != _MODULE:
                return None
            sys.meta_path.remove(self)  # the real finders find it; this one has done its part
            spec = importlib.util.find_spec(name)
            load = spec.loader.exec_module

            def exec_module(module):
                load(module)
                _patch(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _PatchOnImport())
'''

SAVE_SCRIPT = '#!/bin/sh\nenv > "$(dirname "$0")/env-$$.txt"\n'


def encodings(value: str) -> dict[str, bytes]:
    """How `value` may show up in bytes written anywhere: as it is, hex (either case), URL-encoded, and base64
    (standard and URL-safe) at each of the three alignments it can have inside a longer encoded text."""
    raw = value.encode()
    forms = {"plain": raw, "hex": raw.hex().encode(), "HEX": raw.hex().upper().encode(),
             "url": urllib.parse.quote(value, safe="").encode(),
             "url+": urllib.parse.quote_plus(value).encode()}
    for shift in range(3):
        data = b"\0" * shift + raw
        encoded = base64.b64encode(data[:len(data) // 3 * 3])[4 if shift else 0:]
        forms[f"base64@{shift}"] = encoded
        forms[f"base64url@{shift}"] = encoded.replace(b"+", b"-").replace(b"/", b"_")
    return forms


def written_bytes(path: Path) -> bytes:
    """A file's data regions only: the image store's model files are sparse (tens of GB apparent, a few
    hundred KB written), and their holes are zeros nothing was ever written into."""
    chunks = []
    with open(path, "rb") as f:
        fd, end, offset = f.fileno(), os.fstat(f.fileno()).st_size, 0
        while offset < end:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            stop = os.lseek(fd, start, os.SEEK_HOLE)
            # A file system that reports no holes would have us read tens of GB of a model's zeros.
            assert stop - start <= 1 << 28, f"{path}: {stop - start} bytes of data; are its holes reported?"
            os.lseek(fd, start, os.SEEK_SET)
            chunks.append(f.read(stop - start))
            offset = stop
    return b"".join(chunks)


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    code: int
    out: str
    err: str


@dataclass
class Sweep:
    root: Path
    home: Path
    reports: Path
    outputs: Path
    saves: Path
    record: Path
    canaries: dict[str, str] = field(default_factory=dict)  # where it comes from -> its value
    runs: list[Run] = field(default_factory=list)
    status_answers: list[tuple[str, dict]] = field(default_factory=list)  # (stack, GET /api/status answer)
    result_fetches: list[tuple[str, int]] = field(default_factory=list)  # (signed URL, status without auth)
    environs: dict[int, tuple[list[str], dict[str, str]]] = field(default_factory=dict)  # pid -> (argv, env)

    def secret(self, stack: str, name: str) -> str:
        return self.canaries[f"{stack}/{name}"]

    def findings(self, data: bytes) -> list[str]:
        """Each canary found in `data`, with the form it was found in."""
        found = []
        for name, value in self.canaries.items():
            tag = value.rsplit("+", 1)[-1].encode()  # its random part alone: a secret cut short
            forms = {**encodings(value), "tag": tag}
            hits = [form for form, text in forms.items() if text in data]
            if hits:
                found.append(f"{name} [{', '.join(hits)}]")
        return found

    def cli(self, env: dict[str, str], *argv: str, code: int | None = 0) -> Run:
        proc = subprocess.run([sys.executable, "-m", "goldgate.cli", *argv], check=False, cwd=self.root,
                              env=env, capture_output=True, text=True, timeout=180)
        run = Run(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
        self.runs.append(run)
        said = f"goldgate {' '.join(argv)} exited {run.code}: {run.err[-999:]}"
        assert code is None or run.code == code, said
        return run


def canary(name: str, stack: str = "") -> str:
    # '+' and '/' make the URL-encoded and base64 forms differ from the plain one; the random part makes each
    # run's canaries its own and stands for the secret when only a piece of it shows.
    where = f"{name}/{stack}" if stack else name
    return f"sweep+{where}+{secrets.token_hex(8)}"


def write_secrets(sweep: Sweep) -> None:
    for stack in STACKS:
        d = sweep.home / "stacks" / stack / "secrets"
        d.mkdir(parents=True, mode=0o700)
        for name in SECRET_FILES:
            # The S3 key id travels in SigV4's Credential=<id>/<date>/... field: letters and digits, as AWS's.
            key_id = f"SWEEPS3KEYID{stack.upper()}{secrets.token_hex(6).upper()}"
            value = key_id if name == "s3_access_key_id" else canary(name, stack)
            (d / name).write_text(value + "\n")
            (d / name).chmod(0o600)
            sweep.canaries[f"{stack}/{name}"] = value


def command_env(sweep: Sweep) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDGATE_") and k not in ENV_SECRETS}
    for name in ENV_SECRETS:
        env[name] = sweep.canaries[f"env:{name}"] = canary(name.lower()) + secrets.token_hex(8)  # key: >= 32
    recorder = sweep.root / "recorder"
    recorder.mkdir()
    (recorder / "sitecustomize.py").write_text(RECORDER)
    save = sweep.saves / "save.sh"
    save.write_text(SAVE_SCRIPT)
    save.chmod(0o700)
    env.update(GOLDGATE_HOME=str(sweep.home), GOLDGATE_LEDGER_SAVE=str(save),
               SWEEP_RUN_RECORD=str(sweep.record), PYTHONPATH=os.pathsep.join([str(recorder), str(REPO)]))
    return env


def jobs_of(sweep: Sweep, stack: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(f"file:{sweep.home / 'stacks' / stack / 'db.sqlite'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT id, status, inputs_json FROM jobs ORDER BY created_at_ms").fetchall()
    finally:
        db.close()


def read_status(sweep: Sweep, api: str, stack: str, job_id: str) -> None:
    """A client's GET /api/status, and a GET of each signed result URL it hands out, with no token."""
    token = sweep.secret(stack, "api_token")
    request = urllib.request.Request(f"{api}/api/status/{job_id}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        answer = json.loads(reply.read())
    sweep.status_answers.append((stack, answer))
    for result in answer.get("results") or []:
        with urllib.request.urlopen(result["url"], timeout=30) as reply:
            sweep.result_fetches.append((result["url"], reply.status))


def operate(sweep: Sweep, env: dict[str, str]) -> None:
    """The release, then what an operator runs after it, each as a user types it."""
    reports = ("--reports-dir", str(sweep.reports))
    sweep.cli(env, "release", *reports)  # the README's first command, on a home of our own
    sweep.cli(env, "golden", "staging", "--smoke", "--json", *reports)
    sweep.cli(env, "promote", "--check", *reports)
    sweep.cli(env, "promote", "--check", "--json", *reports)
    sweep.cli(env, "up", "staging")
    sweep.cli(env, "up", "prod", "--json")
    sweep.cli(env, "status")
    api = {stack["stack"]: stack["api_url"] for stack in json.loads(sweep.cli(env, "status", "--json").out)}
    sweep.cli(env, "history")
    sweep.cli(env, "history", "--json")
    sweep.cli(env, "metrics", "staging")
    sweep.cli(env, "metrics", "prod", "--json", "--html", str(sweep.outputs / "metrics.html"))
    sweep.cli(env, "stuck", "staging")
    sweep.cli(env, "stuck", "prod", "--json")
    sweep.cli(env, "doctor", "--stack", "staging")
    sweep.cli(env, "doctor", "--stack", "prod", "--json")
    sweep.cli(env, "prune", "staging", "--keep-days", "30", "--dry-run")
    sweep.cli(env, "prune", "prod", "--keep-days", "30", "--dry-run", "--json")
    sweep.cli(env, "demo", "--stack", "staging", "--out", str(sweep.outputs / "demo"), "--json")
    sweep.cli(env, "dr-drill", "staging")
    sweep.cli(env, "dr-drill", "prod", "--json")
    # The checklist's verdict is not this test's concern; what it prints is.
    sweep.cli(env, "checklist", "staging", *reports, code=None)
    sweep.cli(env, "checklist", "prod", "--json", *reports, code=None)
    done = {stack: [row["id"] for row in jobs_of(sweep, stack) if row["status"] == "completed"]
            for stack in STACKS}
    for stack in STACKS:
        read_status(sweep, api[stack], stack, done[stack][-1])
    # A job that ended: each makes its RunPod call (with the stack's key) and leaves the job as it is.
    sweep.cli(env, "recover", done["staging"][0], "--stack", "staging")
    sweep.cli(env, "recover", done["prod"][0], "--stack", "prod", "--json")
    sweep.cli(env, "cancel", done["staging"][0], "--stack", "staging")
    sweep.cli(env, "cancel", done["prod"][0], "--stack", "prod", "--json")
    sweep.cli(env, "recover", "0" * 32, "--stack", "staging", code=1)  # a refusal prints too
    for pid, argv in processes_naming(str(sweep.root)).items():
        try:
            text = Path(f"/proc/{pid}/environ").read_bytes().decode("utf-8", "replace")
        except OSError:  # it ended meanwhile
            continue
        sweep.environs[pid] = (argv, dict(v.split("=", 1) for v in text.split("\0") if "=" in v))
    sweep.cli(env, "down", "all")
    backup = max((sweep.home / "backups" / "staging").glob("*.sqlite"))
    sweep.cli(env, "dr-restore", "staging", "--backup", str(backup))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    root = tmp_path_factory.mktemp("sweep")
    s = Sweep(root=root, home=root / "home", reports=root / "reports", outputs=root / "outputs",
              saves=root / "saves", record=root / "runpod-run.jsonl")
    for d in (s.reports, s.outputs, s.saves):
        d.mkdir()
    write_secrets(s)
    env = command_env(s)
    try:
        operate(s, env)
        yield s
    finally:
        if processes_naming(str(root)):  # the sweep stopped short of its own `down all`
            subprocess.run([sys.executable, "-m", "goldgate.cli", "down", "all"], check=False, cwd=root, env=env,
                           capture_output=True, timeout=120)
        kill_everything_naming(str(root))


def test_no_command_prints_a_secret_on_stdout_or_stderr(sweep: Sweep) -> None:
    ran = {run.argv[0] for run in sweep.runs}
    assert ran == {"release", "golden", "promote", "up", "status", "history", "metrics", "stuck", "doctor",
                   "prune", "demo", "dr-drill", "checklist", "recover", "cancel", "down", "dr-restore"}
    with_json = {run.argv[0] for run in sweep.runs if "--json" in run.argv}
    assert with_json == ran - {"release", "down", "dr-restore"}  # the three take no --json
    assert all(run.out or run.err for run in sweep.runs)  # each said something: there was something to search
    found = [f"goldgate {' '.join(run.argv)} ({stream}): {hit}"
             for run in sweep.runs for stream, text in (("stdout", run.out), ("stderr", run.err))
             for hit in sweep.findings(text.encode())]
    assert found == []


def files_swept(sweep: Sweep) -> Iterator[Path]:
    # The repo's reports and stack files too: the run writes its reports elsewhere (--reports-dir), and
    # nothing of a local release belongs in these tracked files.
    for top in (sweep.home, sweep.reports, sweep.outputs, REPO / "scripts" / "golden-tests" / "reports",
                REPO / "stacks"):
        for path in sorted(top.rglob("*")):
            if path.is_file() and not path.is_symlink():
                yield path


def test_no_file_the_release_and_commands_write_holds_a_secret_but_the_secret_files_and_the_service_config(
        sweep: Sweep) -> None:
    holders = {sweep.home / "stacks" / stack / name
               for stack in STACKS for name in (*(f"secrets/{n}" for n in SECRET_FILES), "service.json")}
    found, swept = [], 0
    for path in files_swept(sweep):
        swept += 1
        if path not in holders:
            found += [f"{path}: {hit}" for hit in sweep.findings(written_bytes(path))]
    assert found == []
    # What was swept is what a release writes: every component's logs, the database, results, reports.
    names = {p.relative_to(sweep.root).as_posix() for p in files_swept(sweep)
             if p.is_relative_to(sweep.root)}
    for expected in ("home/ledger.jsonl", "home/logs/release.jsonl", "home/stacks/staging/logs/service.jsonl",
                     "home/stacks/prod/logs/runpod-emulator.jsonl", "home/stacks/staging/db.sqlite",
                     "reports/latest.json", "reports/latest.html", "outputs/metrics.html"):
        assert expected in names
    assert any(n.startswith("home/stacks/prod/logs/worker-") for n in names)
    assert any(n.startswith("home/backups/staging/") for n in names) and swept > 50
    for stack in STACKS:
        config = sweep.home / "stacks" / stack / "service.json"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        # The holders hold what they should: the sweep finds a secret where there is one.
        assert sweep.findings(written_bytes(config)) != []


def test_no_job_input_holds_a_secret_neither_as_stored_nor_as_runpod_received_it(sweep: Sweep) -> None:
    stored = [(stack, row["id"], row["inputs_json"]) for stack in STACKS for row in jobs_of(sweep, stack)]
    received = [json.loads(line) for line in sweep.record.read_text().splitlines()]
    assert len(received) == len(stored) >= 12  # the golden suite, two smoke runs, the demo: each job once
    found = [f"{stack} job {job_id} inputs_json: {hit}" for stack, job_id, text in stored
             for hit in sweep.findings(text.encode())]
    # The whole /run body: its input, and its webhook URL and policy, which RunPod keeps with the job too.
    found += [f"{run['stack']} {run['path']} body: {hit}" for run in received
              for hit in sweep.findings(run["body"].encode())]
    assert found == []


def test_webhook_and_result_urls_carry_a_signature_never_the_secret(sweep: Sweep) -> None:
    received = [json.loads(line) for line in sweep.record.read_text().splitlines()]
    for run in received:
        body = json.loads(run["body"])
        url = urllib.parse.urlsplit(body["webhook"])
        query = urllib.parse.parse_qs(url.query)
        job_id = body["input"]["job_id"]
        assert url.path == "/api/runpod/webhook" and sorted(query) == ["job", "sig"]
        assert query["job"] == [job_id]
        assert query["sig"] == [webhook_signature(sweep.secret(run["stack"], "webhook_secret"), job_id)]
        assert sweep.findings(body["webhook"].encode()) == []
    assert len(sweep.status_answers) == 2 and sweep.result_fetches
    for stack, answer in sweep.status_answers:
        for result in answer["results"]:
            url = urllib.parse.urlsplit(result["url"])
            query = urllib.parse.parse_qs(url.query)
            assert sorted(query) == ["exp", "sig"]
            key = urllib.parse.unquote(url.path.removeprefix("/api/result/"))
            assert key == result["key"]
            secret = sweep.secret(stack, "webhook_secret")
            assert query["sig"] == [result_signature(secret, key, int(query["exp"][0]))]
            assert sweep.findings(result["url"].encode()) == []
    assert all(status == 200 for _, status in sweep.result_fetches)  # the signature is what opens them


def test_the_ledger_save_script_gets_the_save_token_as_GH_TOKEN_and_never_the_ledger_key(
        sweep: Sweep) -> None:
    dumps = sorted(sweep.saves.glob("env-*.txt"))
    assert dumps, "the release saved its ledger entries through GOLDGATE_LEDGER_SAVE"
    for dump in dumps:
        env = dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line)
        assert env.get("GH_TOKEN") == sweep.canaries["env:GOLDGATE_LEDGER_SAVE_TOKEN"]
        rest = "\n".join(f"{k}={v}" for k, v in env.items() if k != "GH_TOKEN").encode()
        hits = sweep.findings(rest)
        # The operator's own cloud credentials reach it as any program they run gets them; goldgate's don't.
        ours = ("env:GOLDGATE_LEDGER_", "staging/", "prod/")
        assert not [hit for hit in hits if hit.startswith(ours)], hits


def test_no_stack_process_holds_the_operators_credentials_and_only_workers_hold_their_stacks_s3_keys(
        sweep: Sweep) -> None:
    workers = [pid for pid, (_, env) in sweep.environs.items() if "RUNPOD_POD_ID" in env]
    assert workers and len(sweep.environs) > len(workers)  # the hosts, and the workers prod keeps warm
    found = []
    for pid, (argv, env) in sweep.environs.items():
        allowed = {}
        if pid in workers:  # the worker uploads results to R2 (here, the stack's S3 store) with these
            stack = env["STACK"]
            allowed = {"R2_ACCESS_KEY_ID": sweep.secret(stack, "s3_access_key_id"),
                       "R2_SECRET_ACCESS_KEY": sweep.secret(stack, "s3_secret_access_key")}
        for name, value in env.items():
            if allowed.get(name) == value:
                continue
            found += [f"pid {pid} ({' '.join(argv)[:80]}) {name}: {hit}"
                      for hit in sweep.findings(f"{name}={value}".encode())]
    assert found == []
