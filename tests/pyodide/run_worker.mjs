// Runs the API Worker's upload under the real Pyodide interpreter (what Python Workers run) in
// Node, offline, and drives one job through `Default.fetch` with real JS Request objects.
//
// Usage: node run_worker.mjs UPLOAD.json [PYODIDE]  (UPLOAD.json from worker_upload.py)
//        node run_worker.mjs --d1-probes  (only the D1 stand-in's answers to a few edge calls, as JSON)
//        node run_worker.mjs --probe PROBE.py UPLOAD.json [PYODIDE]  (runs PROBE.py's Python, its last
//          expression a JSON text, with the upload and the runtime's stand-ins importable; prints
//          {"result": ..., "printed": [...], "stderr": [...]})
//        node run_worker.mjs --token-rotation UPLOAD.json [PYODIDE]  (the API token's rotation: UPLOAD.json's env
//          binds API_TOKEN_PREVIOUS; see tokenRotation)
// Then it invokes `Default.scheduled` once, as a Cron Trigger does.
// Prints one JSON summary on stdout: every request's status, headers and body, the RunPod calls,
// the D1 calls each request made, and every line the Worker printed.
//
// Only the platform is stood in, with the bindings' real call shapes: D1 (prepare/bind/all/run/
// first, batch = one transaction) over a real SQLite (sql.js, SQLite compiled to wasm), R2
// (head/get/put, bodies as ReadableStreams), `fetch` answering RunPod's /run, the `workers`
// module (WorkerEntrypoint, Response) and workerd's FixedLengthStream. Everything else is the upload itself.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
// argv: <upload.json> [<package dir under node_modules>: "pyodide" (Python 3.12) or "pyodide-py313"],
// after `--probe PROBE.py` in that mode.
const ARGS = ["--probe", "--serve"].includes(process.argv[2]) ? process.argv.slice(4)
  : process.argv[2] === "--token-rotation" ? process.argv.slice(3) : process.argv.slice(2);
const PYODIDE_DIR = join(HERE, "node_modules", ARGS[1] || "pyodide");
const require = createRequire(import.meta.url);
const { loadPyodide } = await import(join(PYODIDE_DIR, "pyodide.mjs"));
const initSqlJs = require("sql.js");

const UPLOAD_ROOT = "/session/worker"; // the upload's modules, as the runtime lays them out
const RUNTIME_ROOT = "/session/runtime"; // the runtime's own modules (here: the `workers` stand-in)

// ---------------------------------------------------------------------------------------------
// D1: the binding's call shapes over one SQLite database.

const describe = (v) => (v === null ? "null" : Array.isArray(v) ? "Array" : typeof v === "object"
  ? (v.constructor?.name ?? "object") : typeof v);

class D1PreparedStatement {
  constructor(db, sql, params = []) {
    this.db = db;
    this.sql = sql;
    this.params = params;
  }

  bind(...values) {
    for (const value of values) {
      // As workerd's binding (d1-api.ts) does: numbers, strings, booleans (sent as 1/0), null, bytes (an
      // ArrayBuffer, a view, an Array of 0..255). undefined (what Python None becomes), a BigInt (what Pyodide makes
      // of a Python int past 2**53) and any other object are refused at bind time, with `typeof` in the message.
      const bytes = value instanceof ArrayBuffer || ArrayBuffer.isView(value)
        || (Array.isArray(value) && value.every((b) => typeof b === "number" && b >= 0 && b < 256));
      const ok = value === null || ["number", "string", "boolean"].includes(typeof value) || bytes;
      if (!ok) {
        const error = `D1_TYPE_ERROR: Type '${typeof value}' not supported for value '${String(value)}'`;
        this.db.calls.push({ op: "bind", statements: [{ sql: this.sql, params: [] }], ok: false, error });
        throw new Error(error);
      }
    }
    return new D1PreparedStatement(this.db, this.sql, values);
  }

  async all() {
    return this.db.call("all", [this], () => this.db.execute(this));
  }

  async run() {
    // D1 is asked for no rows (resultsFormat NONE): the answer is its success and meta only.
    return this.db.call("run", [this], () => {
      const { success, meta } = this.db.execute(this);
      return { success, meta };
    });
  }

  async first(column) {
    return this.db.call("first", [this], () => {
      const row = this.db.execute(this).results[0] ?? null;
      if (column === undefined || row === null) return row;
      // As workerd's binding (d1-api.ts): a row without the column is an error, not undefined; no row is null.
      if (row[column] === undefined) throw new Error(`D1_COLUMN_NOTFOUND: Column not found (${column})`);
      return row[column];
    });
  }
}

// D1's per-query limits (developers.cloudflare.com/d1/platform/limits), which its SQLite enforces and sql.js's
// does not (its builds allow 32,766 parameters and 1 GB values): 100 bound parameters, 100,000 bytes of SQL, and a
// string or blob of at most 2,000,000 bytes (D1's 2 MB row; the local SQLite's limits, service/sqlite_database.py).
// Past one, D1 fails the call as SQLite does, and a batch with it applies nothing.
const D1_MAX_PARAMS = 100;
const D1_MAX_SQL_BYTES = 100000;
const D1_MAX_VALUE_BYTES = 2000000;

function withinD1Limits(statement) {
  if (Buffer.byteLength(statement.sql) > D1_MAX_SQL_BYTES) throw new Error("statement too long: SQLITE_TOOBIG");
  if (statement.params.length > D1_MAX_PARAMS) throw new Error("too many SQL variables: SQLITE_ERROR");
  for (const p of statement.params) {
    const size = typeof p === "string" ? Buffer.byteLength(p) : Array.isArray(p) ? p.length
      : p instanceof ArrayBuffer || ArrayBuffer.isView(p) ? p.byteLength : 0;
    if (size > D1_MAX_VALUE_BYTES) throw new Error("string or blob too big: SQLITE_TOOBIG");
  }
}

class D1Database {
  constructor(SQL, migrations) {
    this.sqlite = new SQL.Database();
    this.sqlite.exec("PRAGMA foreign_keys = ON");
    for (const migration of migrations) this.sqlite.exec(migration.sql);
    this.calls = [];
  }

  prepare(sql) {
    return new D1PreparedStatement(this, String(sql));
  }

  async batch(statements) {
    // A Python list that was not converted with to_js arrives as a PyProxy, not an Array.
    if (!Array.isArray(statements)) {
      throw new TypeError(`D1_ERROR: batch() takes an Array of prepared statements, got ${describe(statements)}`);
    }
    for (const s of statements) {
      if (!(s instanceof D1PreparedStatement)) {
        throw new TypeError(`D1_ERROR: batch() got ${describe(s)}, not a D1PreparedStatement`);
      }
    }
    return this.call("batch", statements, () => {
      this.sqlite.exec("BEGIN");
      try {
        const results = statements.map((s) => this.execute(s));
        this.sqlite.exec("COMMIT");
        return results;
      } catch (error) {
        this.sqlite.exec("ROLLBACK");
        throw error;
      }
    });
  }

  call(op, statements, body) {
    const entry = { op, statements: statements.map((s) => ({ sql: s.sql, params: s.params })), ok: true };
    this.calls.push(entry);
    try {
      return body();
    } catch (error) {
      entry.ok = false;
      entry.error = String(error.message ?? error);
      throw error;
    }
  }

  execute(statement) {
    // The binding sends the whole text to D1, which runs every statement in it (as one transaction here, as
    // the REST stand-in does) and answers one result each; the binding hands back the first (firstIfArray in
    // workerd's d1-api.ts). sql.js's prepare() would compile the first statement and drop the rest unseen.
    const before = this.totalChanges();
    const answers = [];
    this.sqlite.exec("SAVEPOINT d1_statement");
    try {
      withinD1Limits(statement);
      for (const prepared of this.sqlite.iterateStatements(statement.sql)) {
        if (/^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b/i.test(prepared.getSQL())) {
          throw new Error("D1 does not support transaction statements; use batch()");
        }
        if (answers.length && statement.params.length) {
          throw new Error("params are only allowed with a single statement");
        }
        if (!answers.length) prepared.bind(statement.params.map((p) => (typeof p === "boolean" ? Number(p) : p)));
        const rows = [];
        while (prepared.step()) rows.push(prepared.getAsObject());
        answers.push(rows);
      }
      if (!answers.length) throw new Error("No SQL statements detected.");
      this.sqlite.exec("RELEASE d1_statement");
    } catch (error) {
      this.sqlite.exec("ROLLBACK TO d1_statement");
      this.sqlite.exec("RELEASE d1_statement");
      throw new Error(`D1_ERROR: ${error.message}`);
    }
    const results = answers[0];
    const changes = this.totalChanges() - before;
    // last_row_id is SQLite's last_insert_rowid(), as D1's meta documents it (it stays at the last INSERT's).
    const lastRowId = this.sqlite.exec("SELECT last_insert_rowid()")[0].values[0][0];
    return { results, success: true, meta: { changes, changed_db: changes > 0, duration: 0, rows_written: changes,
                                             rows_read: results.length, last_row_id: lastRowId } };
  }

  totalChanges() {
    return this.sqlite.exec("SELECT total_changes()")[0].values[0][0];
  }

  rows(sql) {
    const [table] = this.sqlite.exec(sql);
    return table ? table.values.map((v) => Object.fromEntries(table.columns.map((c, i) => [c, v[i]]))) : [];
  }
}

// ---------------------------------------------------------------------------------------------
// R2: head/get/put; `get` hands the body over as a ReadableStream, as R2 does.

class R2Bucket {
  constructor() {
    this.objects = new Map();
    this.calls = [];
    this.down = false; // while true, head/get reject as R2 does when it has an internal error
    this.breaking = new Map(); // key -> bytes its get body gives before it errors, as when R2 drops a stream
    this.onCancel = () => {}; // called with the key of a get body its reader cancelled
  }

  fail(op, key) {
    if (this.down) throw new Error(`${op}: We encountered an internal error. Please try again. (10001)`);
  }

  async put(key, value, options = {}) {
    // R2 takes a string, an ArrayBuffer or a view (or a stream or Blob, not needed here); a PyProxy is refused.
    if (!(typeof value === "string" || value instanceof ArrayBuffer || ArrayBuffer.isView(value))) {
      throw new TypeError(`put: the value must be a string, ArrayBuffer or ArrayBufferView, not ${describe(value)}`);
    }
    const bytes = typeof value === "string" ? new TextEncoder().encode(value)
      : new Uint8Array(ArrayBuffer.isView(value) ? value.buffer.slice(value.byteOffset, value.byteOffset
                                                                        + value.byteLength) : value.slice(0));
    this.objects.set(key, { bytes, httpMetadata: { ...(options.httpMetadata ?? {}) }, uploaded: new Date() });
    return this.describe(key, this.objects.get(key));
  }

  async head(key) {
    this.calls.push({ op: "head", key });
    this.fail("head", key);
    const stored = this.objects.get(key);
    return stored ? this.describe(key, stored) : null;
  }

  async get(key) {
    this.calls.push({ op: "get", key });
    this.fail("get", key);
    const stored = this.objects.get(key);
    if (!stored) return null;
    return Object.assign(this.describe(key, stored), {
      body: objectStream(stored.bytes, this.breaking.get(key), () => this.onCancel(key)),
      bodyUsed: false,
      arrayBuffer: async () => stored.bytes.slice().buffer,
      text: async () => new TextDecoder().decode(stored.bytes),
    });
  }

  describe(key, stored) {
    // As R2 does for a single-part upload: `etag` is the MD5 of the bytes in hex, `httpEtag` the same quoted.
    const etag = createHash("md5").update(stored.bytes).digest("hex");
    return { key, version: "1", size: stored.bytes.byteLength, etag, httpEtag: `"${etag}"`,
             uploaded: stored.uploaded, httpMetadata: { ...stored.httpMetadata }, customMetadata: {},
             storageClass: "Standard" };
  }
}

// An object's body in four chunks; with `breakAt`, the pull once that many bytes were given errors.
function objectStream(bytes, breakAt, cancelled) {
  const size = Math.max(4, Math.ceil(bytes.byteLength / 4));
  let given = 0;
  return new ReadableStream({
    pull(controller) {
      if (breakAt !== undefined && given >= breakAt) {
        controller.error(new Error("Network connection lost."));
      } else if (given >= bytes.byteLength) {
        controller.close();
      } else {
        controller.enqueue(bytes.slice(given, given + size));
        given += size;
      }
    },
    cancel: cancelled,
  });
}

// workerd's FixedLengthStream: an identity transform that passes exactly `expected` bytes (the runtime sends that
// as the response's Content-Length): more, or fewer at its close, errors it.
class FixedLengthStream extends TransformStream {
  constructor(expected) {
    let passed = 0;
    super({
      transform(chunk, controller) {
        passed += chunk.byteLength;
        if (passed > expected) throw new TypeError(`FixedLengthStream: more than the expected ${expected} bytes`);
        controller.enqueue(chunk);
      },
      flush() {
        if (passed < expected) throw new TypeError(`FixedLengthStream: ${passed} of the expected ${expected} bytes`);
      },
    });
  }
}
globalThis.FixedLengthStream = FixedLengthStream;

// ---------------------------------------------------------------------------------------------
// fetch: RunPod's /run. The init object goes through a real Request, so a Python dict that was not
// converted (a PyProxy) loses its method, headers and body exactly as it would on Workers.

function runpodFetch(base, apiKey) {
  const calls = [];
  const held = { next: false, arrived: null, release: null }; // hold the next /run answer (hold())
  const fetch = async (input, init) => {
    const request = new Request(String(input), init);
    const call = { url: request.url, method: request.method, headers: Object.fromEntries(request.headers),
                   body: await request.text(), initType: describe(init),
                   signal: init?.signal instanceof AbortSignal };
    calls.push(call);
    const reply = (status, payload) => new Response(JSON.stringify(payload),
      { status, headers: { "content-type": "application/json" } });
    if (request.url !== `${base}/run`) return reply(404, { error: `no route ${request.method} ${request.url}` });
    if (request.method !== "POST") return reply(405, { error: `${request.method} not allowed on /run` });
    if (request.headers.get("authorization") !== `Bearer ${apiKey}`) return reply(401, { error: "Unauthorized" });
    const id = `rp-${calls.length}-pyodide`;
    if (held.next) {
      held.next = false;
      await new Promise((release) => { held.release = release; held.arrived(call); });
    }
    return reply(200, { id, status: "IN_QUEUE" });
  };
  // The next /run is held until release() is called; resolves with that call once it arrives.
  const hold = () => new Promise((arrived) => { held.next = true; held.arrived = arrived; });
  return { fetch, calls, hold, release: () => held.release() };
}

// ---------------------------------------------------------------------------------------------
// The runtime's `workers` module: what the entry imports from it, built on the JS Response.

const WORKERS_MODULE = `
"""Stand-in for the Workers runtime's \`workers\` module: WorkerEntrypoint, Request and Response."""
from http import HTTPMethod

import js
from pyodide.ffi import to_js


class Request:
    """What the runtime hands \`Default.fetch\`: the SDK's wrapper of the JS Request (\`js_object\`). As the SDK's,
    its \`method\` is \`HTTPMethod[name]\`, a KeyError for a method that enum lacks (PROPFIND, a lower-case patch)."""

    def __init__(self, js_request):
        self.js_object = js_request

    @property
    def method(self):
        return HTTPMethod[self.js_object.method]

    @property
    def url(self):
        return self.js_object.url

    @property
    def body(self):
        return self.js_object.body


class _EnvWrapper:
    """The SDK hands a WorkerEntrypoint its \`env\` wrapped (\`_EnvWrapper\`): a Python object whose attributes are
    the JS env's (a missing binding is an AttributeError), not the JS object itself."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        value = getattr(self._env, name)
        setattr(self, name, value)
        return value


class WorkerEntrypoint:
    def __init__(self, ctx, env):
        self.ctx = ctx
        self.env = env

    def __init_subclass__(cls, **kwargs):
        init = cls.__init__

        def wrapped(self, ctx, env, *args, **kwargs):
            init(self, ctx, _EnvWrapper(env), *args, **kwargs)

        cls.__init__ = wrapped


# The JS bodies every SDK release that checks its body takes (by constructor name). Later releases also take
# Python bytes and the typed arrays (Uint8Array, ...); earlier ones raise TypeError for both, so a Worker that
# relied on them fails with the runtime it happens to get: this stand-in refuses them.
_JS_BODIES = {"Blob", "ArrayBuffer", "TypedArray", "DataView", "FormData", "ReadableStream", "URLSearchParams",
              "Response"}


class Response:
    """A JS Response, as the SDK's \`workers.Response(body, status, status_text, headers)\` builds it: a body is
    None, a str, or a JS object named in _JS_BODIES; headers a dict, a list of pairs or a JS Headers. Anything
    else is the SDK's TypeError. A JS Response as the body is not needed here."""

    def __init__(self, body=None, status=None, status_text="", headers=None, web_socket=None):
        if hasattr(body, "constructor"):
            if body.constructor.name not in _JS_BODIES - {"Response"}:
                raise TypeError(f"Unsupported type in Response: {body.constructor.name}")
        elif not (body is None or isinstance(body, str)):
            raise TypeError(f"Unsupported type in Response: {type(body).__name__}")
        options = {}
        if status:
            options["status"] = status
        if status_text:
            options["statusText"] = status_text
        if headers:
            if isinstance(headers, list):
                options["headers"] = js.Headers.new(to_js(headers))
            elif isinstance(headers, dict):
                options["headers"] = js.Headers.new(to_js(list(headers.items())))
            elif getattr(getattr(headers, "constructor", None), "name", None) == "Headers":
                options["headers"] = headers
            else:
                raise TypeError("Received unexpected type for headers argument")
        self.js_object = js.Response.new(body, to_js(options, dict_converter=js.Object.fromEntries))
`;

// ---------------------------------------------------------------------------------------------

// Pyodide with the upload's modules and the runtime's stand-in `workers` module importable.
async function boot(upload, printed, errors) {
  const pyodide = await loadPyodide({
    indexURL: PYODIDE_DIR + "/",
    stdout: (line) => printed.push(line),
    stderr: (line) => errors.push(line),
  });
  pyodide.FS.mkdirTree(UPLOAD_ROOT);
  pyodide.FS.mkdirTree(RUNTIME_ROOT);
  const write = (root, name, content) => {
    const path = `${root}/${name}`;
    pyodide.FS.mkdirTree(dirname(path));
    pyodide.FS.writeFile(path, content);
  };
  write(UPLOAD_ROOT, upload.bundle.main_module, upload.bundle.main_content);
  for (const file of upload.bundle.files) write(UPLOAD_ROOT, file.name, Buffer.from(file.base64, "base64"));
  write(RUNTIME_ROOT, "workers.py", WORKERS_MODULE);
  pyodide.runPython(`import sys; sys.path[:0] = ["${UPLOAD_ROOT}", "${RUNTIME_ROOT}"]`);
  return pyodide;
}

async function main() {
  const upload = JSON.parse(readFileSync(ARGS[0], "utf8"));
  const env = upload.env;
  const printed = [];
  const errors = [];

  const started = Date.now();
  const pyodide = await boot(upload, printed, errors);
  const loadMs = Date.now() - started;

  const SQL = await initSqlJs();
  const db = new D1Database(SQL, upload.migrations);
  const bucket = new R2Bucket();
  const runpod = runpodFetch(env.RUNPOD_ENDPOINT_BASE, env.RUNPOD_API_KEY);
  globalThis.fetch = runpod.fetch; // the entry takes `fetch` and `AbortSignal` from `js`, i.e. globalThis

  const Default = pyodide.runPython(`
from ${upload.bundle.main_module.replace(/\.py$/, "")} import Default
Default
`);
  const sdkRequest = pyodide.pyimport("workers").Request;
  // The runtime keeps a request's work alive until each promise handed to waitUntil settles.
  const waiting = [];
  const worker = Default({ waitUntil: (promise) => { waiting.push(promise); }, passThroughOnException: () => {} },
                         { ...env, DB: db, RESULTS: bucket });

  const steps = [];
  const base = env.PUBLIC_BASE_URL;
  const auth = { authorization: `Bearer ${env.API_TOKEN}` };

  // One request through Default.fetch; what the client sees, plus the D1 and R2 calls it made.
  // `read`: how the client reads the answer's body (default: whole); a failure to read it is `body_error`.
  async function call(name, method, url, { body, headers = {}, read = (r) => r.arrayBuffer() } = {}) {
    const d1From = db.calls.length;
    const r2From = bucket.calls.length;
    const printedFrom = printed.length;
    const streamed = body instanceof ReadableStream ? { duplex: "half" } : {}; // a chunked upload
    const request = new Request(new URL(url, base), { method, headers, body, ...streamed });
    const step = { name, method, url: String(new URL(url, base)) };
    try {
      const wrapped = sdkRequest(request); // as the runtime does: Default.fetch gets the SDK's Request
      const reply = await worker.fetch(wrapped);
      wrapped.destroy();
      const response = reply.js_object;
      reply.destroy();
      if (!(response instanceof Response)) throw new TypeError(`fetch returned ${describe(response)}, not a Response`);
      step.status = response.status;
      step.headers = Object.fromEntries(response.headers);
      let bytes = new Uint8Array();
      try {
        bytes = new Uint8Array(await read(response));
      } catch (error) {
        step.body_error = String(error.message ?? error);
      }
      step.body_base64 = Buffer.from(bytes).toString("base64");
      if (bytes.byteLength && (step.headers["content-type"] ?? "").startsWith("application/json")) {
        step.json = JSON.parse(new TextDecoder().decode(bytes));
      }
    } catch (error) {
      step.exception = String(error.stack ?? error);
    }
    step.d1 = db.calls.slice(d1From);
    step.r2 = bucket.calls.slice(r2From);
    step.printed = printed.slice(printedFrom);
    steps.push(step);
    return step;
  }

  await call("health", "GET", "/healthz");
  const created = await call("create", "POST", "/api/queue/create", {
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ workflow_id: "sdxl-txt2img", inputs: { prompt: "a lighthouse at dusk" } }),
  });
  const jobId = created.json?.job_id;
  const run = runpod.calls.at(-1);
  const runBody = run ? JSON.parse(run.body || "null") : null;
  const webhook = runBody?.webhook ?? `${base}/api/runpod/webhook?job=${jobId}&sig=missing`;
  const runpodId = db.rows(`SELECT runpod_job_id FROM jobs WHERE id = '${jobId}'`)[0]?.runpod_job_id ?? "rp-missing";

  // The GPU worker uploads the image to R2, then RunPod posts COMPLETED to the signed webhook URL.
  const key = `results/${jobId}/0.png`;
  const image = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...new TextEncoder().encode("pyodide")]);
  await bucket.put(key, image, { httpMetadata: { contentType: "image/png" } });
  const delivery = JSON.stringify({
    id: runpodId, status: "COMPLETED", delayTime: 800, executionTime: 2500,
    output: { images: [{ key, content_type: "image/png", bytes: image.byteLength, sha256: "0".repeat(64),
                         width: 8, height: 8 }],
              timings: { total_ms: 2500 }, workflow_version: "sdxl-txt2img@1.0.0", gpu_type: "NVIDIA L4" },
  });
  await call("webhook", "POST", webhook, { body: delivery, headers: { "content-type": "application/json" } });
  await call("webhook_again", "POST", webhook, { body: delivery, headers: { "content-type": "application/json" } });
  const status = await call("status", "GET", `/api/status/${jobId}`, { headers: auth });
  await call("metrics", "GET", "/api/metrics", { headers: auth });
  await call("result", "GET", `/api/result/${key}`, { headers: auth });
  await call("result_signed", "GET", status.json?.results?.[0]?.url ?? `/api/result/${key}?sig=missing`);
  await call("result_missing", "GET", `/api/result/results/${jobId}/9.png`, { headers: auth });
  bucket.down = true;
  await call("result_r2_down", "GET", `/api/result/${key}`, { headers: auth });
  bucket.down = false;
  await call("health_head", "HEAD", "/healthz");
  await call("result_head", "HEAD", `/api/result/${key}`, { headers: auth });
  // Revalidation: the client sends back the ETag it was given (a 304 must come from R2's head alone).
  const etag = steps.find((s) => s.name === "result").headers?.etag ?? '"none"';
  const signedUrl = status.json?.results?.[0]?.url ?? `/api/result/${key}?sig=missing`;
  const current = (name, method, url, condition, headers = auth) =>
    call(name, method, url, { headers: { ...headers, "if-none-match": condition } });
  await current("result_current", "GET", `/api/result/${key}`, etag);
  await current("result_current_weak_in_list", "GET", `/api/result/${key}`, `"stale", W/${etag}`);
  await current("result_current_any", "GET", `/api/result/${key}`, "*");
  await current("result_current_head", "HEAD", `/api/result/${key}`, etag);
  await current("result_current_signed", "GET", signedUrl, etag, {});
  await current("result_stale", "GET", `/api/result/${key}`, '"stale"');
  await current("result_current_no_auth", "GET", `/api/result/${key}`, etag, {});
  await current("result_current_bad_signature", "GET", `/api/result/${key}?exp=9999999999&sig=${"0".repeat(64)}`,
                etag, {});
  await call("result_range", "GET", `/api/result/${key}`, { headers: { ...auth, range: "bytes=0-3" } });
  // R2 drops the body: before its first byte (the answer can still be a 503), and after 8 bytes (the 200 is out).
  bucket.breaking.set(key, 0);
  await call("result_r2_broke_before_first_byte", "GET", `/api/result/${key}`, { headers: auth });
  bucket.breaking.set(key, 8);
  await call("result_r2_cut", "GET", `/api/result/${key}`, { headers: auth });
  bucket.breaking.delete(key);
  // The client goes away after the first chunk: the Worker stops reading R2 (its stream is cancelled).
  const r2Cancelled = new Promise((resolve) => { bucket.onCancel = resolve; });
  const gone = await call("result_client_gone", "GET", `/api/result/${key}`, { headers: auth, read: async (r) => {
    const reader = r.body.getReader();
    const first = await reader.read();
    await reader.cancel();
    return first.value;
  } });
  gone.r2_cancelled = await r2Cancelled;
  bucket.onCancel = () => {};
  await call("bad_signature", "POST", `/api/runpod/webhook?job=${jobId}&sig=${"0".repeat(64)}`,
             { body: delivery, headers: { "content-type": "application/json" } });
  // Methods the SDK's HTTPMethod lacks (fetch upper-cases only DELETE, GET, HEAD, OPTIONS, POST and PUT).
  await call("propfind", "PROPFIND", "/api/workflows", { headers: auth });
  await call("patch_lower_case", "patch", "/api/queue/create", { body: "{}", headers: auth });
  const oversized = JSON.stringify({ workflow_id: "sdxl-txt2img", inputs: { prompt: "x".repeat(70000) } });
  await call("oversized", "POST", "/api/queue/create", {
    body: oversized,
    headers: { ...auth, "content-type": "application/json", "content-length": String(Buffer.byteLength(oversized)) },
  });
  await call("oversized_undeclared", "POST", "/api/queue/create", {
    body: oversized, headers: { ...auth, "content-type": "application/json" },
  });
  // An 8 MiB chunked upload (a stream: no Content-Length): the Worker must stop reading past the limit.
  let pulled = 0;
  const chunks = new ReadableStream({
    pull(controller) {
      pulled += 65536;
      controller.enqueue(new Uint8Array(65536));
      if (pulled >= 8 * 1024 * 1024) controller.close();
    },
  });
  const chunked = await call("oversized_chunked", "POST", "/api/queue/create", {
    body: chunks, headers: { ...auth, "content-type": "application/json" },
  });
  chunked.pulled = pulled;

  // A webhook that overtakes /run's answer: the job has no RunPod id yet (a NULL column) and adopts
  // the signed delivery's id. Read through D1 on Pyodide 0.28, that NULL comes back as jsnull.
  const arrived = runpod.hold();
  const overtaken = call("create_overtaken", "POST", "/api/queue/create", {
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ workflow_id: "sdxl-txt2img", inputs: { prompt: "a harbour at dawn" } }),
  });
  const held = await arrived;
  const early = JSON.stringify({ id: `rp-${runpod.calls.length}-pyodide`, status: "FAILED", delayTime: 5,
                                 executionTime: 7, error: "CUDA out of memory" });
  await call("webhook_overtaking", "POST", JSON.parse(held.body).webhook,
             { body: early, headers: { "content-type": "application/json" } });
  runpod.release();
  await overtaken;

  // A client retrying a create it got no answer to, with the same Idempotency-Key: one job, one /run.
  const keyed = { headers: { ...auth, "content-type": "application/json", "idempotency-key": "pyodide-retry-1" },
                  body: JSON.stringify({ workflow_id: "sdxl-txt2img", inputs: { prompt: "a mill in fog" } }) };
  const keyedJob = (await call("create_keyed", "POST", "/api/queue/create", keyed)).json?.job_id;
  await call("create_keyed_again", "POST", "/api/queue/create", keyed);

  // Its webhook is lost and RunPod has forgotten it (/status: 404): a recovery reads the outcome its worker
  // stored in R2, through the R2 adapter (the body a ReadableStream). While R2 drops that stream mid-body,
  // the recovery is refused 503, retry later, and the job stays as it was.
  const keyedImage = `results/${keyedJob}/0.png`;
  const outcomeKey = `results/${keyedJob}/outcome.json`;
  await bucket.put(keyedImage, image, { httpMetadata: { contentType: "image/png" } });
  const keyedRunpodId = db.rows(`SELECT runpod_job_id FROM jobs WHERE id = '${keyedJob}'`)[0]?.runpod_job_id;
  await bucket.put(outcomeKey, JSON.stringify({
    runpod_job_id: keyedRunpodId,
    output: { images: [{ key: keyedImage, content_type: "image/png", bytes: image.byteLength }], pad: "x".repeat(100000) },
  }), { httpMetadata: { contentType: "application/json" } });
  bucket.breaking.set(outcomeKey, 16);
  await call("recover_r2_broke_off", "POST", `/api/admin/recover/${keyedJob}`, { headers: auth });
  bucket.breaking.delete(outcomeKey);
  await call("recover_from_r2", "POST", `/api/admin/recover/${keyedJob}`, { headers: auth });

  // The Cron Trigger (Default.scheduled, under the RETENTION_KEEP_DAYS binding): a job that finished 40 days ago
  // goes with its delivery; every job created above stays.
  const longAgo = new Date(Date.now() - 40 * 86400000).toISOString();
  db.sqlite.run("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, created_at, "
                + "created_at_ms, updated_at, finished_at) VALUES ('job-long-ago', 'staging', 'sdxl-txt2img', "
                + "'sdxl-txt2img@1.0.0', '{}', ?, 'completed', ?, ?, ?, ?)",
                ["0".repeat(32), longAgo, Date.parse(longAgo), longAgo, longAgo]);
  db.sqlite.run("INSERT INTO webhook_deliveries (fingerprint, job_id, runpod_status, source, applied, outcome, "
                + "received_at) VALUES ('long-ago-hook', 'job-long-ago', 'COMPLETED', 'webhook', 1, 'applied', ?)",
                [longAgo]);
  const cron = { name: "scheduled", method: "SCHEDULED", url: "30 3 * * *" };
  const d1From = db.calls.length;
  const printedFrom = printed.length;
  try {
    // As the runtime calls an entrypoint class's handler: the controller alone (env and ctx are the instance's).
    await worker.scheduled({ cron: cron.url, scheduledTime: Date.now(), noRetry: () => {} });
  } catch (error) {
    cron.exception = String(error.stack ?? error);
  }
  cron.d1 = db.calls.slice(d1From);
  cron.r2 = [];
  cron.printed = printed.slice(printedFrom);
  steps.push(cron);

  const settled = await Promise.allSettled(waiting);
  const waitUntil = { count: waiting.length, promises: waiting.every((p) => p instanceof Promise),
                      rejected: settled.filter((s) => s.status === "rejected").map((s) => String(s.reason)) };

  const [versions] = JSON.parse(pyodide.runPython(
    "import json, sys, pyodide; json.dumps([[pyodide.__version__, sys.version.split()[0]]])"));
  return {
    pyodide: versions[0], python: versions[1], load_ms: loadMs, job_id: jobId, result_key: key,
    result_base64: Buffer.from(image).toString("base64"), result_uploaded_ms: bucket.objects.get(key)?.uploaded.getTime(),
    runpod_calls: runpod.calls, steps, printed, stderr: errors, wait_until: waitUntil,
    tables: { jobs: db.rows("SELECT id, status, runpod_job_id, version, worker_image_tag, error FROM jobs"),
              webhook_deliveries: db.rows("SELECT job_id, runpod_status, source, applied FROM webhook_deliveries"),
              job_metrics: db.rows("SELECT job_id, status, runpod_run_duration_ms FROM job_metrics") },
  };
}

// `--d1-probes`: what the D1 stand-in answers to calls whose real answer workerd's binding fixes, without Pyodide.
async function d1Probes() {
  const db = new D1Database(await initSqlJs(), []);
  const probe = async (name, call) => {
    try {
      return [name, { value: (await call()) ?? null }];
    } catch (error) {
      return [name, { error: String(error.message ?? error) }];
    }
  };
  const count = () => db.prepare("SELECT count(*) AS n FROM t").first("n");
  return Object.fromEntries([
    await probe("two_statements", () => db.prepare(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a')").run().then((r) => r.success)),
    await probe("rows_after_two_statements", count),
    await probe("all_of_two_selects", () => db.prepare("SELECT 1 AS a; SELECT 2 AS b").all().then((r) => r.results)),
    await probe("second_statement_fails", () => db.prepare(
      "INSERT INTO t VALUES (5, 'e'); INSERT INTO t VALUES (1, 'again')").run()),
    await probe("rows_after_failed_pair", count),
    await probe("params_with_two_statements", () => db.prepare(
      "INSERT INTO t VALUES (?, 'b'); INSERT INTO t VALUES (3, 'c')").bind(2).run()),
    await probe("first_missing_column", () => db.prepare("SELECT v FROM t").first("nope")),
    await probe("first_missing_column_no_row", () => db.prepare("SELECT v FROM t WHERE id = 99").first("nope")),
    await probe("first_null_value", () => db.prepare("SELECT NULL AS v").first("v")),
    await probe("first_column", () => db.prepare("SELECT v FROM t WHERE id = ?").bind(1).first("v")),
    await probe("only_a_comment", () => db.prepare("-- nothing").run()),
    // bind()'s own checks (d1-api.ts): number, string, boolean (as 1/0), null and bytes; nothing else.
    await probe("bind_undefined", () => db.prepare("SELECT ? AS v").bind(undefined).all()),
    await probe("bind_bigint", () => db.prepare("SELECT ? AS v").bind(2n ** 60n).all()),
    await probe("bind_object", () => db.prepare("SELECT ? AS v").bind({ a: 1 }).all()),
    await probe("bind_boolean", () => db.prepare("SELECT ? AS v").bind(true).first("v")),
    // run() asks D1 for no rows (resultsFormat NONE) and hands back only success and meta.
    await probe("run_keys", () => db.prepare("SELECT 1 AS a").run().then((r) => Object.keys(r).sort())),
    // D1's limits: 100 bound parameters, 100,000 bytes of SQL, 2,000,000 bytes a value; a batch over one applies
    // nothing.
    await probe("params_100", () => db.prepare(`SELECT ${Array(100).fill("?").join(" + ")} AS n`)
      .bind(...Array(100).fill(1)).first("n")),
    await probe("params_101", () => db.prepare(`SELECT ${Array(101).fill("?").join(" + ")} AS n`)
      .bind(...Array(101).fill(1)).first("n")),
    await probe("sql_too_long", () => db.prepare(`SELECT 1 AS a /* ${"x".repeat(100000)} */`).all()),
    await probe("value_too_big", () => db.prepare("INSERT INTO t VALUES (7, ?)").bind("x".repeat(2000001)).run()),
    await probe("batch_with_one_over", () => db.batch([db.prepare("INSERT INTO t VALUES (8, 'h')"),
      db.prepare("INSERT INTO t VALUES (9, ?)").bind("x".repeat(2000001))])),
    await probe("rows_after_refusals", count),
    // meta.last_row_id is the inserted row's rowid, as D1 answers it.
    await probe("insert_meta", () => db.prepare("INSERT INTO t (v) VALUES ('z')").run()
      .then((r) => ({ changes: r.meta.changes, last_row_id: r.meta.last_row_id }))),
  ]);
}

// `--probe PROBE.py UPLOAD.json`: one Python probe against the upload under the stand-ins (no scenario).
async function probe() {
  const printed = [];
  const errors = [];
  const pyodide = await boot(JSON.parse(readFileSync(ARGS[0], "utf8")), printed, errors);
  const result = await pyodide.runPythonAsync(readFileSync(process.argv[3], "utf8"));
  return { result: JSON.parse(result), printed, stderr: errors };
}


// `--serve PORT_FILE UPLOAD.json [PYODIDE]`: the upload served over HTTP on 127.0.0.1 (a free port), each request
// handed to `Default.fetch` as workerd hands it (a WHATWG-parsed URL, a Fetch Headers, the body as a stream), with
// the real `fetch` (RUNPOD_ENDPOINT_BASE must be reachable), the D1 and R2 stand-ins. A second port (written after
// the first, space-separated) serves the harness: `PUT /r2/<key>` (content-type kept), `GET /printed?from=N`.
// No Date is added (workerd's Response has none; Cloudflare's edge adds one): a client of this port sees only what
// the Worker sets, plus Content-Length for a body of known length.
async function serve() {
  const { createServer } = await import("node:http");
  const { Readable } = await import("node:stream");
  const { writeFileSync } = await import("node:fs");
  const upload = JSON.parse(readFileSync(ARGS[0], "utf8"));
  const printed = [];
  const errors = [];
  const pyodide = await boot(upload, printed, errors);
  const db = new D1Database(await initSqlJs(), upload.migrations);
  const bucket = new R2Bucket();
  const Default = pyodide.runPython(`from ${upload.bundle.main_module.replace(/\.py$/, "")} import Default\nDefault`);
  const sdkRequest = pyodide.pyimport("workers").Request;
  const waiting = [];
  const worker = Default({ waitUntil: (promise) => { waiting.push(promise); }, passThroughOnException: () => {} },
                         { ...upload.env, DB: db, RESULTS: bucket });
  const base = upload.env.PUBLIC_BASE_URL;
  const api = createServer(async (req, res) => {
    res.sendDate = false;
    try {
      const headers = new Headers();
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        if (req.rawHeaders[i].toLowerCase() === "host") continue;
        try { headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]); } catch { /* a value fetch refuses */ }
      }
      headers.set("host", new URL(base).host);
      const hasBody = req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;
      const init = { method: req.method, headers };
      if (hasBody && !["GET", "HEAD"].includes(req.method)) Object.assign(init, { body: Readable.toWeb(req), duplex: "half" });
      else req.resume();
      const request = new Request(new URL(req.url, base), init);
      const wrapped = sdkRequest(request);
      const reply = await worker.fetch(wrapped);
      wrapped.destroy();
      const response = reply.js_object;
      reply.destroy();
      const bytes = req.method === "HEAD" || response.body === null ? new Uint8Array()
        : new Uint8Array(await response.arrayBuffer());
      const out = {};
      for (const [k, v] of response.headers) out[k] = v;
      if (bytes.byteLength && out["content-length"] === undefined) out["content-length"] = String(bytes.byteLength);
      res.writeHead(response.status, out);
      res.end(Buffer.from(bytes));
    } catch (error) {
      printed.push(JSON.stringify({ harness_exception: String(error.stack ?? error) }));
      res.writeHead(599, { "content-type": "text/plain" });
      res.end(String(error.stack ?? error));
    }
  });
  const admin = createServer(async (req, res) => {
    const url = new URL(req.url, "http://admin");
    const chunks = [];
    for await (const c of req) chunks.push(c);
    if (req.method === "PUT" && url.pathname.startsWith("/r2/")) {
      await bucket.put(decodeURIComponent(url.pathname.slice(4)), Buffer.concat(chunks),
                       { httpMetadata: { contentType: req.headers["content-type"] } });
      res.end("{}");
    } else if (url.pathname === "/printed") {
      res.end(JSON.stringify({ printed: printed.slice(Number(url.searchParams.get("from") || 0)), total: printed.length,
                               stderr: errors }));
    } else if (url.pathname === "/sql") {
      res.end(JSON.stringify(db.rows(Buffer.concat(chunks).toString())));
    } else { res.writeHead(404); res.end(); }
  });
  await new Promise((r) => api.listen(0, "127.0.0.1", 511, r));
  await new Promise((r) => admin.listen(0, "127.0.0.1", 511, r));
  writeFileSync(process.argv[3] + ".tmp", `${api.address().port} ${admin.address().port}`);
  (await import("node:fs")).renameSync(process.argv[3] + ".tmp", process.argv[3]);
  await new Promise(() => {}); // until killed
}

// `--token-rotation UPLOAD.json [PYODIDE]`: the API token rotated (docs/RUNBOOK.md) on the Worker. Two isolates of
// the upload, each a fresh Pyodide (a deploy with other bindings starts new ones; the entry builds its App once per
// isolate): "rotating", with the upload's env (API_TOKEN and API_TOKEN_PREVIOUS bound), and "previous_empty", with
// API_TOKEN_PREVIOUS bound to "" (a secret whose value was cleared rather than removed), which counts as unset. In
// each, a few requests, each with its status, JSON body and the lines the Worker printed for it.
async function tokenRotation() {
  const upload = JSON.parse(readFileSync(ARGS[0], "utf8"));
  const { API_TOKEN: current, API_TOKEN_PREVIOUS: previous } = upload.env;
  const neither = `${current}-not-a-token`;
  const phases = {};
  let versions;
  for (const [phase, bound] of [["rotating", previous], ["previous_empty", ""]]) {
    const printed = [];
    const errors = [];
    const pyodide = await boot(upload, printed, errors);
    [versions] = JSON.parse(pyodide.runPython(
      "import json, sys, pyodide; json.dumps([[pyodide.__version__, sys.version.split()[0]]])"));
    const db = new D1Database(await initSqlJs(), upload.migrations);
    const runpod = runpodFetch(upload.env.RUNPOD_ENDPOINT_BASE, upload.env.RUNPOD_API_KEY);
    globalThis.fetch = runpod.fetch;
    const Default = pyodide.runPython(`from ${upload.bundle.main_module.replace(/\.py$/, "")} import Default\nDefault`);
    const sdkRequest = pyodide.pyimport("workers").Request;
    const waiting = [];
    const worker = Default({ waitUntil: (promise) => { waiting.push(promise); }, passThroughOnException: () => {} },
                           { ...upload.env, API_TOKEN_PREVIOUS: bound, DB: db, RESULTS: new R2Bucket() });
    const steps = [];
    // `authorization`: the header's value, or null to send none.
    const call = async (name, method, path, authorization, body) => {
      const headers = authorization === null ? {} : { authorization };
      if (body !== undefined) headers["content-type"] = "application/json";
      const step = { name, method, path };
      const from = printed.length;
      try {
        const wrapped = sdkRequest(new Request(new URL(path, upload.env.PUBLIC_BASE_URL), { method, headers, body }));
        const reply = await worker.fetch(wrapped);
        wrapped.destroy();
        const response = reply.js_object;
        reply.destroy();
        step.status = response.status;
        const text = await response.text();
        step.json = text && (response.headers.get("content-type") ?? "").startsWith("application/json")
          ? JSON.parse(text) : null;
      } catch (error) {
        step.exception = String(error.stack ?? error);
      }
      step.printed = printed.slice(from);
      steps.push(step);
    };
    const create = JSON.stringify({ workflow_id: "sdxl-txt2img", inputs: { prompt: "a lighthouse at dusk" } });
    if (phase === "rotating") {
      await call("previous", "GET", "/api/workflows", `Bearer ${previous}`);
      await call("previous_create", "POST", "/api/queue/create", `Bearer ${previous}`, create);
    } else {
      await call("old_previous", "GET", "/api/workflows", `Bearer ${previous}`);
    }
    await call("current", "GET", "/api/workflows", `Bearer ${current}`);
    await call("current_create", "POST", "/api/queue/create", `Bearer ${current}`, create);
    await call("neither", "GET", "/api/workflows", `Bearer ${neither}`);
    await call("no_header", "GET", "/api/workflows", null);
    await call("empty_bearer", "GET", "/api/workflows", "Bearer ");
    await Promise.allSettled(waiting);
    phases[phase] = { steps, printed, stderr: errors, runpod_calls: runpod.calls.length };
  }
  return { pyodide: versions[0], python: versions[1], phases };
}

const MODES = { "--d1-probes": d1Probes, "--probe": probe, "--serve": serve, "--token-rotation": tokenRotation };
const summary = await (MODES[process.argv[2]] ?? main)();
process.stdout.write(JSON.stringify(summary) + "\n");
