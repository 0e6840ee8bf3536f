"""docs/CLOUD.md, "Tearing a stack down": Cloudflare deletes only an empty R2 bucket, so the commands it shows must
empty every bucket a STAGING `pulumi destroy` deletes, each with S3 credentials that reach it. It showed the results
bucket alone: once a DR drill had stored a backup, the destroy stopped at the backups bucket, which the workers'
token cannot even list. The doc's block is run here, its `pulumi stack output` answered with what the program
exports under mocks and its `aws` recorded."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pulumi
from infra_harness import ACCOUNT_ID, filled_stack_file, use_cloud
from test_infra_program import _settings, _traced

from infra.program import read_config, run

DOC = Path(__file__).resolve().parents[2] / "docs" / "CLOUD.md"


def teardown_block() -> str:
    """The indented shell block of "Tearing a stack down" that empties the buckets."""
    text = DOC.read_text()
    section = text[text.index("- **Tearing a stack down.**"):]
    section = section[:section.index("\n## ")]
    blocks = re.findall(r"(?:^ {6}\S.*\n(?: {6,}.*\n)*)", section, re.MULTILINE)
    found = [b for b in blocks if "aws s3 rm" in b]
    assert len(found) == 1, blocks
    return "\n".join(line[6:] for line in found[0].splitlines())


def _stub(path: Path, body: str) -> None:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_the_teardown_commands_empty_every_bucket_a_staging_destroy_deletes(stacks_dir, tmp_path, bundle):
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    cloud = use_cloud("staging", doc)
    exported: dict[str, object] = {}

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config("staging")
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        exports = out.exports()
        names = list(exports)
        return pulumi.Output.all(*[pulumi.Output.from_input(exports[n]) for n in names], out.api.script.id,
                                 out.storage.migrations.id, out.gpu.drain_check.id).apply(
            lambda v: _traced(exported.update, dict(zip(names, v[:len(names)], strict=True))))

    program()
    deleted = {r.inputs["name"] for r in cloud.by_type("r2Bucket:R2Bucket") if not r.retain_on_delete}
    assert deleted == {"goldgate-staging-results", "goldgate-staging-results-backups"}
    # Each token's S3 access key id (its id) and the bucket its one policy reaches.
    reach = {}
    for token in cloud.by_type("apiToken:ApiToken"):
        (resource,) = json.loads(token.inputs["policies"][0]["resources"])
        reach[token.id] = resource.rpartition(f"{ACCOUNT_ID}_default_")[2]

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "outputs.json").write_text(json.dumps(exported))
    _stub(bin_dir / "pulumi", f"""import json, sys
args = sys.argv[1:]
outputs = json.load(open({str(tmp_path / 'outputs.json')!r}))
assert args[:2] == ["stack", "output"] and "--stack" in args and args[args.index("--stack") + 1] == "staging", args
name = args[2]
if name not in outputs:
    sys.exit(f"error: current stack does not have output property {{name!r}}")
print(outputs[name])
""")
    _stub(bin_dir / "aws", f"""import json, os, sys
with open({str(tmp_path / 'aws.jsonl')!r}, "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "key": os.environ.get("AWS_ACCESS_KEY_ID")}}) + "\\n")
""")
    script = teardown_block().replace("<account>", ACCOUNT_ID)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], check=False, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    calls = [json.loads(line) for line in (tmp_path / "aws.jsonl").read_text().splitlines()]
    emptied = {}
    for call in calls:
        argv = call["argv"]
        assert argv[:2] == ["s3", "rm"] and "--recursive" in argv, argv
        assert argv[argv.index("--endpoint-url") + 1] == f"https://{ACCOUNT_ID}.r2.cloudflarestorage.com"
        emptied[argv[2].removeprefix("s3://")] = call["key"]
    assert set(emptied) == deleted
    for bucket, key in emptied.items():
        assert reach.get(key) == bucket, (bucket, "emptied with a token that does not reach it")
