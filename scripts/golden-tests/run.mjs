#!/usr/bin/env node
// The checklist's entry point ("run scripts/golden-tests/run.mjs against STAGING"): a thin shim over
// `goldgate golden <stack>`, which runs the cases in cases/, writes reports/latest.json (+ a dated
// copy and an HTML view) and exits non-zero when any case fails. All logic lives in goldgate.
//
//   node scripts/golden-tests/run.mjs [stack=staging] [goldgate golden options...]
//
// GOLDGATE_BIN picks the goldgate executable (default: `goldgate` on PATH).
import { spawn } from "node:child_process";
import { constants } from "node:os";

const args = process.argv.slice(2);
// Options only (`run.mjs --concurrency 2`) still mean the default stack.
const [stack, rest] = args.length && !args[0].startsWith("-") ? [args[0], args.slice(1)] : ["staging", args];
const bin = process.env.GOLDGATE_BIN || "goldgate";

// A cancelled CI job signals this process; the golden run must stop with it rather than go on writing
// reports/latest.json after the job is gone. Exit only once goldgate has. The handlers go in before the
// spawn (which starts goldgate at once): a signal that came first would end node alone and orphan it.
// Handlers run from the event loop, so `child` is set by the time one does.
let child;
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => child.kill(sig));
}
child = spawn(bin, ["golden", stack, ...rest], { stdio: "inherit" });
child.on("error", (err) => {
  console.error(`run.mjs: cannot run ${bin}: ${err.message} (install goldgate: pip install -e .)`);
  process.exit(127);
});
child.on("exit", (code, signal) => {
  // Killed by a signal is a failure too, never a pass: 128 + its number, as a shell reports it.
  process.exit(code !== null ? code : 128 + (constants.signals[signal] ?? 0));
});
