#!/usr/bin/env node
// The checklist's entry point ("run scripts/golden-tests/run.mjs against STAGING"): a thin shim over
// `goldgate golden <stack>`, which runs the cases in cases/, writes reports/latest.json (+ a dated
// copy and an HTML view) and exits non-zero when any case fails. All logic lives in goldgate.
//
//   node scripts/golden-tests/run.mjs [stack=staging] [goldgate golden options...]
//
// GOLDGATE_BIN picks the goldgate executable (default: `goldgate` on PATH).
import { spawnSync } from "node:child_process";

const [stack = "staging", ...rest] = process.argv.slice(2);
const bin = process.env.GOLDGATE_BIN || "goldgate";
const result = spawnSync(bin, ["golden", stack, ...rest], { stdio: "inherit" });
if (result.error) {
  console.error(`run.mjs: cannot run ${bin}: ${result.error.message} (install goldgate: pip install -e .)`);
  process.exit(127);
}
process.exit(result.status ?? 1);
