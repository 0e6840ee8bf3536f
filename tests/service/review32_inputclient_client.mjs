// An image-to-image client as a team writes it from goldgate's docs alone (README "Sending an image",
// docs/openapi.json, docs/INTERFACES.md "Public API" and "Input images"): Node 20's own fetch, no packages.
// test_review32_inputclient_node_flow.py runs it against a local STAGING stack.
//
// Usage: node review32_inputclient_client.mjs API_URL TOKEN_FILE IMAGES_DIR
//   IMAGES_DIR: in.png, in.jpg, in.webp (stills), odd.png (sides not a multiple of 8), rot.jpg (EXIF orientation 6)
//   and huge.png (more pixels than 4096 x 4096).
// Prints one JSON object: {"checks": [{name, ok, detail}], "renders": [{file, upload, result, status}],
// "exchanges": [{method, path, status, headers, body}]} (every answer met, for the test to hold to openapi.json);
// exits 1 when a check failed.

import { createHash, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const TYPES = { png: "image/png", jpg: "image/jpeg", webp: "image/webp" };

export class GoldgateError extends Error {
  constructor(status, body, headers) {
    const error = (body && body.error) || {};
    super(`${status} ${error.code}: ${error.message}`);
    Object.assign(this, { status, code: error.code, field: error.field, jobId: error.job_id, headers });
  }
}

export class Client {
  constructor(apiUrl, token, record = () => {}) {
    this.api = apiUrl.replace(/\/+$/, "");
    this.token = token;
    this.record = record;
  }

  async request(method, path, { body, headers = {} } = {}) {
    const all = this.token === null ? { ...headers } : { Authorization: `Bearer ${this.token}`, ...headers };
    const response = await fetch(this.api + path, { method, headers: all, body });
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    this.record({ method, path, status: response.status, headers: Object.fromEntries(response.headers), body: json });
    if (!response.ok) throw new GoldgateError(response.status, json, response.headers);
    return { headers: response.headers, json };
  }

  async workflows() {
    return (await this.request("GET", "/api/workflows")).json.workflows;
  }

  // The raw bytes, their type in Content-Type (none when contentType is null); 201 {key, content_type, ...}.
  async upload(bytes, contentType, headers = {}) {
    const typed = contentType === null ? headers : { "Content-Type": contentType, ...headers };
    return (await this.request("POST", "/api/inputs", { body: bytes, headers: typed })).json;
  }

  async create(workflowId, inputs, idempotencyKey) {
    const headers = { "Content-Type": "application/json" };
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    const body = JSON.stringify({ workflow_id: workflowId, inputs });
    const { json, headers: got } = await this.request("POST", "/api/queue/create", { body, headers });
    return { ...json, location: got.get("location"), replayed: got.get("idempotent-replayed") };
  }

  // Poll every 1 to 2 s at first, backing off x1.5 up to 30 s; stop once `settled` is true (INTERFACES).
  async wait(jobId, limitMs = 120000) {
    const until = Date.now() + limitMs;
    for (let delay = 1000; ; delay = Math.min(delay * 1.5, 30000)) {
      const job = (await this.request("GET", `/api/status/${jobId}`)).json;
      if (job.settled) return job;
      if (Date.now() > until) throw new Error(`job ${jobId} still ${job.status} after ${limitMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  // A result's signed url needs no token until its url_expires_at.
  async download(url) {
    const response = await fetch(url);
    const bytes = Buffer.from(await response.arrayBuffer());
    this.record({ method: "GET", path: new URL(url).pathname, status: response.status,
                  headers: Object.fromEntries(response.headers), body: null });
    return { status: response.status, bytes, contentType: response.headers.get("content-type") };
  }
}

async function refusal(promise) {
  try {
    await promise;
    return { status: "accepted", message: "accepted" };
  } catch (error) {
    if (error instanceof GoldgateError) return error;
    throw error;
  }
}

async function main() {
  const [apiUrl, tokenFile, dir] = process.argv.slice(2);
  const token = readFileSync(tokenFile, "utf8").trim();
  const exchanges = [];
  const checks = [];
  const renders = [];
  const check = (name, ok, detail) => checks.push({ name, ok: Boolean(ok), detail });
  const record = (x) => exchanges.push(x);
  const client = new Client(apiUrl, token, record);
  const file = (name) => readFileSync(join(dir, name));

  // The workflow and its image parameter.
  const img2img = (await client.workflows()).find((w) => w.id === "sdxl-img2img");
  const images = img2img ? img2img.parameters.filter((p) => p.type === "image") : [];
  check("sdxl-img2img has one required parameter of type image", images.length === 1 && images[0].required, images);
  const param = images.length ? images[0].name : "image";

  // Uploads: a PNG, a JPEG and a WebP, and the two whose render differs in size.
  const stored = {};
  for (const name of ["in.png", "in.jpg", "in.webp", "odd.png", "rot.jpg"]) {
    const ext = name.split(".").pop();
    const bytes = file(name);
    const answer = await client.upload(bytes, TYPES[ext]);
    stored[name] = answer;
    check(`${name}: 201 with an inputs/ key of its type, its bytes and their sha256`,
          new RegExp(`^inputs/[0-9a-f]{32}\\.${ext}$`).test(answer.key) && answer.content_type === TYPES[ext]
          && answer.bytes === bytes.length && answer.sha256 === createHash("sha256").update(bytes).digest("hex"),
          answer);
  }
  const again = await client.upload(file("in.png"), "image/png");
  check("the same bytes uploaded twice get two keys", again.key !== stored["in.png"].key, again.key);

  // The upload's refusals.
  const png = file("in.png");
  const over = Buffer.alloc(20 * 1024 * 1024 + 1);
  png.copy(over);
  const anonymous = new Client(apiUrl, null, record);
  const wrong = new Client(apiUrl, "not-the-api-token-0123456789", record);
  // (No token and a body of megabytes is left out: the local server closes such a connection unread, and Node's
  // fetch then often fails ECONNRESET before it reads the 401; the test sends that one with httpx.)
  const form = new FormData();
  form.set("image", new Blob([png]), "in.png");
  for (const [name, send, status, code, also] of [
    ["no Content-Type", () => client.upload(png, null), 415, "unsupported_media_type"],
    ["Content-Type image/gif", () => client.upload(png, "image/gif"), 415, "unsupported_media_type"],
    ["multipart/form-data", () => client.upload(form, null), 415, "unsupported_media_type"],
    ["PNG bytes as image/jpeg", () => client.upload(png, "image/jpeg"), 400, "invalid_image",
     (e) => /PNG/.test(e.message)],
    ["a PNG cut short", () => client.upload(png.subarray(0, 20), "image/png"), 400, "invalid_image"],
    ["an empty body", () => client.upload(new Uint8Array(0), "image/png"), 400, "empty_body"],
    ["5000 x 4000 pixels", () => client.upload(file("huge.png"), "image/png"), 400, "image_too_large"],
    ["20 MiB and a byte", () => client.upload(over, "image/png"), 413, "body_too_large"],
    ["Content-Encoding: gzip", () => client.upload(png, "image/png", { "Content-Encoding": "gzip" }), 415,
     "unsupported_content_encoding", (e) => e.headers.get("accept-encoding") === "identity"],
    ["no token", () => anonymous.upload(png, "image/png"), 401, "unauthorized",
     (e) => e.headers.get("www-authenticate") === "Bearer"],
    ["a wrong token", () => wrong.upload(png, "image/png"), 401, "unauthorized"],
  ]) {
    const e = await refusal(send());
    check(`upload, ${name}: ${status} ${code}`, e.status === status && e.code === code && (!also || also(e)),
          e.message);
  }

  // The create's refusals of an image parameter.
  const prompt = "a watercolor farmhouse";
  for (const [name, value, code] of [
    ["a key never uploaded", `inputs/${"0".repeat(32)}.png`, "input_image_missing"],
    ["a URL", "https://example.com/a.png", "invalid_input"],
    ["a result key", `results/${"0".repeat(32)}/0.png`, "invalid_input"],
  ]) {
    const e = await refusal(client.create("sdxl-img2img", { [param]: value, prompt }));
    check(`create, ${name}: 400 ${code} naming the field`,
          e.status === 400 && e.code === code && e.field === `inputs.${param}`, [e.message, e.field]);
  }

  // Jobs: the PNG's with an Idempotency-Key, replayed and reused.
  const idem = randomUUID();
  const inputs = { [param]: stored["in.png"].key, prompt, steps: 4 };
  const first = await client.create("sdxl-img2img", inputs, idem);
  check("create: 202 queued, Location /api/status/<job_id>",
        first.status === "queued" && first.location === `/api/status/${first.job_id}`, first);
  const replay = await client.create("sdxl-img2img", inputs, idem);
  check("the same key and body: the same job, Idempotent-Replayed: true",
        replay.job_id === first.job_id && replay.replayed === "true", replay);
  let e = await refusal(client.create("sdxl-img2img", { ...inputs, prompt: "another" }, idem));
  check("the same key, another body: 422 idempotency_key_reused naming the job",
        e.status === 422 && e.code === "idempotency_key_reused" && e.jobId === first.job_id, e.message);
  e = await refusal(client.create("sdxl-img2img", inputs, "two words"));
  check("a malformed key: 400 invalid_idempotency_key", e.status === 400 && e.code === "invalid_idempotency_key",
        e.message);

  const jobs = [["in.png", first.job_id]];
  for (const name of ["in.jpg", "in.webp", "odd.png", "rot.jpg"]) {
    jobs.push([name, (await client.create("sdxl-img2img", { [param]: stored[name].key, prompt, steps: 4 })).job_id]);
  }
  for (const [name, jobId] of jobs) {
    const job = await client.wait(jobId);
    const [result] = job.results;
    const upload = { width: stored[name].width, height: stored[name].height };
    renders.push({ file: name, upload, status: job.status,
                   result: result ? { width: result.width, height: result.height } : null });
    check(`${name}: the job completed with one result`, job.status === "completed" && job.results.length === 1, job);
    if (!result) continue;
    const got = await client.download(result.url);
    check(`${name}: its signed url serves the image without the token`,
          got.status === 200 && got.bytes.length === result.bytes && got.contentType === result.content_type,
          [got.status, got.contentType]);
  }
  e = await refusal(client.request("GET", `/api/result/${stored["in.png"].key}`));
  check("GET /api/result never serves an upload: 404 not_found", e.status === 404 && e.code === "not_found",
        e.message);

  process.stdout.write(`${JSON.stringify({ checks, renders, exchanges })}\n`);
  process.exitCode = checks.every((c) => c.ok) ? 0 : 1;
}

await main();
