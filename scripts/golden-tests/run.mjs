#!/usr/bin/env node
// The checklist's entry point ("run scripts/golden-tests/run.mjs against STAGING"): a thin shim over
// `goldgate golden <stack>`, which runs the cases in cases/, writes reports/latest.json (+ a dated
// copy and an HTML view) and exits non-zero when any case fails. All logic lives in goldgate.
//
//   node scripts/golden-tests/run.mjs [stack=staging] [goldgate golden options...]
//
// GOLDGATE_BIN picks the goldgate executable (default: `goldgate` on PATH, else this checkout's .venv/bin/goldgate).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { constants } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
// Options only (`run.mjs --concurrency 2`) still mean the default stack.
const [stack, rest] = args.length && !args[0].startsWith("-") ? [args[0], args.slice(1)] : ["staging", args];
// The README sets goldgate up in the checkout's .venv, and a shell that has not activated it (CI's, a new
// terminal) would otherwise fail here: this checkout's goldgate is used when none is on PATH.
const checkoutBin = fileURLToPath(new URL("../../.venv/bin/goldgate", import.meta.url));
const onPath = (process.env.PATH || "").split(delimiter).some((dir) => dir && existsSync(join(dir, "goldgate")));
const bin = process.env.GOLDGATE_BIN || (onPath || !existsSync(checkoutBin) ? "goldgate" : checkoutBin);

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
  console.error(`run.mjs: cannot run ${bin}: ${err.message} (set goldgate up in this checkout: python3 -m venv ` +
                `.venv && .venv/bin/pip install -e . -- or name it with GOLDGATE_BIN)`);
  process.exit(127);
});
child.on("exit", (code, signal) => {
  // Killed by a signal is a failure too, never a pass: 128 + its number, as a shell reports it.
  process.exit(code !== null ? code : 128 + (constants.signals[signal] ?? 0));
});
