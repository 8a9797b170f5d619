// edgegan's web page: the generator in onnxruntime-web, seeds by the language-neutral latent rule (latents.js),
// a grid, an interpolation and a benchmark whose JSON `edgegan bench-report` merges. window.edgegan is the same
// API for scripts (tests/web drives it through the DevTools protocol).
import { RULE, latents, slerp, toUint8NHWC } from "./latents.js";

const $ = (id) => document.getElementById(id);
const state = { manifest: null, sessions: new Map(), lastBench: null };

function say(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function loadScript(runtime) {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = runtime.script;
    if (runtime.integrity) { s.integrity = runtime.integrity; s.crossOrigin = "anonymous"; }
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load onnxruntime-web from ${runtime.script}` +
      (runtime.local ? "" : " (offline? export with --web-runtime DIR to serve it locally)")));
    document.head.appendChild(s);
  });
}

// WASM threads: ?threads=N in the page's URL, else up to 4 (one per core); threads need cross-origin isolation.
const THREADS_ASKED = Number(new URLSearchParams(location.search).get("threads")) || null;

function threads() {
  if (!self.crossOriginIsolated) return 1;
  return Math.max(1, THREADS_ASKED ?? Math.min(navigator.hardwareConcurrency || 1, 4));
}

/** WebGPU is usable: the browser has it, gives an adapter, and the page has onnxruntime-web's WebGPU build. */
async function webgpu() {
  if (!navigator.gpu || state.manifest.runtime.webgpu === false) return false;
  try {
    return !!(await navigator.gpu.requestAdapter());
  } catch {
    return false;
  }
}

function modelEntry(name) {
  const models = state.manifest.models;
  const entry = name ? models.find((m) => m.name === name || m.file === name) : models[0];
  if (!entry) throw new Error(`no model ${name}; this page has ${models.map((m) => m.name).join(", ")}`);
  return entry;
}

async function session(name, ep = "wasm") {
  const entry = modelEntry(name);
  const key = `${entry.file}|${ep}`;
  if (!state.sessions.has(key)) {
    const t0 = performance.now();
    const made = ort.InferenceSession.create(new URL(entry.file, location.href).href, { executionProviders: [ep] })
      .then((s) => ({ s, createS: (performance.now() - t0) / 1e3 }))
      .catch((e) => {
        state.sessions.delete(key);
        throw new Error(`could not load model ${entry.file} (${ep}): ${e.message || e}`);
      });
    state.sessions.set(key, made);
  }
  return (await state.sessions.get(key)).s;
}

function labelsFor(n, label) {
  const k = state.manifest.contract.num_classes;
  if (!k) return null;
  const out = new BigInt64Array(n);
  for (let i = 0; i < n; i++) out[i] = BigInt(label === null || label === undefined || label === "" ? i % k : label);
  return out;
}

/** z: Float32Array n*nz, labels: BigInt64Array | null -> {pixels: Uint8Array n*H*W*C, n, h, w, c}. */
async function run(z, labels, model, ep = "wasm") {
  const c = state.manifest.contract, n = z.length / c.nz;
  const s = await session(model, ep);
  const feeds = { z: new ort.Tensor("float32", z, [n, c.nz]) };
  if (labels) feeds.label = new ort.Tensor("int64", labels, [n]);
  const out = (await s.run(feeds)).image;
  const pixels = c.output === "uint8_nhwc" ? new Uint8Array(out.data)
    : toUint8NHWC(out.data, n, c.channels, c.height, c.width);
  return { pixels, n, h: c.height, w: c.width, c: c.channels };
}

function draw(result) {
  const { pixels, n, h, w, c } = result;
  const cols = Math.ceil(Math.sqrt(n)), rows = Math.ceil(n / cols), scale = Math.max(1, Math.floor(256 / (cols * w)));
  const canvas = $("grid");
  canvas.width = cols * (w + 1) + 1;
  canvas.height = rows * (h + 1) + 1;
  canvas.style.width = `${canvas.width * scale}px`;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const img = ctx.createImageData(w, h);
  for (let b = 0; b < n; b++) {
    for (let p = 0; p < h * w; p++) {
      for (let k = 0; k < 3; k++) img.data[p * 4 + k] = pixels[(b * h * w + p) * c + (c === 1 ? 0 : k)];
      img.data[p * 4 + 3] = 255;
    }
    ctx.putImageData(img, 1 + (b % cols) * (w + 1), 1 + Math.floor(b / cols) * (h + 1));
  }
}

async function sample(seed, n, label = null, truncation = null, model = null, ep = "wasm") {
  const z = latents(seed, 0, n, state.manifest.contract.nz, truncation);
  return run(z, labelsFor(n, label), model, ep);
}

async function interpolate(seedA, seedB, steps, label = null, model = null) {
  const nz = state.manifest.contract.nz;
  const z = slerp(latents(seedA, 0, 1, nz), latents(seedB, 0, 1, nz), steps);
  return run(z, labelsFor(steps, label === null && state.manifest.contract.num_classes ? 0 : label), model);
}

function percentile(sorted, q) {  // numpy's default (linear) percentile
  const pos = (sorted.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function browserName() {
  const m = navigator.userAgent.match(/(HeadlessChrome|Chrome|Firefox|Version)\/([\d.]+)/);
  const name = m ? (m[1] === "Version" ? "Safari" : m[1]) : "browser";
  return { name, version: m ? m[2] : "" };
}

/** Time every model the page has on each execution provider and batch: an `edgegan bench --json` result. */
async function bench({ batches = [1, 16], seconds = 2, warmup = 3, providers = null, models = null } = {}) {
  const eps = providers || ["wasm", ...(await webgpu() ? ["webgpu"] : [])];
  const c = state.manifest.contract, rows = [];
  const names = models || state.manifest.models.map((m) => m.name);
  for (const name of names) {
    const entry = modelEntry(name);
    for (const ep of eps) {
      for (const batch of batches) {
        const row = { model: `${state.manifest.name}/${entry.file}`, engine: "onnxruntime-web", setup: ep,
          provider: ep === "wasm" ? `wasm (${threads()} thread${threads() > 1 ? "s" : ""}, SIMD)` : ep,
          provider_asked: ep, threads: threads(), batch, precision: entry.precision,  // WebGPU too: its CPU side
          output: c.output, error: null };
        try {
          const z = latents(0, 0, batch, c.nz);
          const labels = labelsFor(batch, null);
          const fresh = !state.sessions.has(`${entry.file}|${ep}`);
          await session(entry.file, ep);
          row.cold_create_s = fresh ? (await state.sessions.get(`${entry.file}|${ep}`)).createS : null;
          let t0 = performance.now();
          await run(z, labels, entry.file, ep);
          row.cold_first_run_s = (performance.now() - t0) / 1e3;
          for (let i = 0; i < warmup; i++) await run(z, labels, entry.file, ep);
          const times = [], end = performance.now() + seconds * 1e3;
          while (performance.now() < end || times.length < 5) {
            t0 = performance.now();
            await run(z, labels, entry.file, ep);
            times.push(performance.now() - t0);
          }
          const sorted = [...times].sort((a, b) => a - b);
          Object.assign(row, { iters: times.length, rounds: 1, p50_ms: percentile(sorted, 0.5),
            p90_ms: percentile(sorted, 0.9), p99_ms: percentile(sorted, 0.99),
            mean_ms: times.reduce((a, b) => a + b, 0) / times.length, min_ms: sorted[0] });
          row.images_per_s = batch / (row.p50_ms / 1e3);
        } catch (e) {
          row.error = String(e.message || e);
        }
        Object.assign(row, { spread: null, macs: null, gflops: null, peak_gflops: null, peak_share: null,
          cpu_ms: null, ratio: null });
        rows.push(row);
      }
    }
  }
  const b = browserName(), cpus = navigator.hardwareConcurrency || null;
  const result = {
    kind: "edgegan bench", format: 1,
    machine: { label: `${b.name.toLowerCase()}-${cpus}cpu`, cpu: `${b.name} ${b.version} (${navigator.platform})`,
      arch: navigator.platform, logical_cpus: cpus, usable_cpus: cpus, flags: [], memory_gib: navigator.deviceMemory || null,
      os: navigator.userAgent, loadavg: null, providers: eps, cross_origin_isolated: !!self.crossOriginIsolated,
      versions: { onnxruntime: `web ${state.manifest.runtime.version}`, edgegan: state.manifest.edgegan,
        browser: navigator.userAgent } },
    settings: { batches, threads: [threads()], providers: eps, setups: eps, warmup, iters: null, duration_s: seconds,
      rounds: 1, seed: 0, source: "edgegan web page" },
    memory_method: null, peak: [], rows,
  };
  state.lastBench = result;
  return result;
}

function showBench(result) {
  // Built as DOM nodes, not HTML text: an error message is shown as text, whatever it holds.
  const table = document.createElement("table");
  const line = (cells, tag) => {
    const tr = table.insertRow();
    for (const text of cells) tr.appendChild(document.createElement(tag)).textContent = text;
  };
  line(["model", "provider", "batch", "p50 ms", "img/s"], "th");
  for (const r of result.rows) {
    line([r.model, r.provider, String(r.batch), r.error ? r.error : r.p50_ms.toFixed(3),
      r.error ? "" : r.images_per_s.toFixed(0)], "td");
  }
  $("bench-out").replaceChildren(table);
  const link = $("bench-download");
  link.href = URL.createObjectURL(new Blob([JSON.stringify(result, null, 2)], { type: "application/json" }));
  link.hidden = false;
}

function value(id) {
  const v = $(id).value.trim();
  return v === "" ? null : Number(v);
}

/** A seed field as a BigInt: Python's seeds go up to 2**64 - 1, past what a Number holds exactly. */
function seedValue(id, fallback) {
  const v = $(id).value.trim();
  if (v === "") return BigInt(fallback);
  if (!/^\d+$/.test(v)) throw new Error(`seed must be a non-negative integer, got ${JSON.stringify(v)}`);
  return BigInt(v);
}

async function guarded(what, work) {
  try {
    say(`${what}…`);
    const t0 = performance.now();
    await work();
    say(`${what}: done in ${(performance.now() - t0).toFixed(0)} ms`);
  } catch (e) {
    say(`${what} failed: ${e.message || e}`, true);
  }
}

function setUp(m) {
  const c = m.contract;
  $("title").textContent = `${m.name}: ${c.arch}, ${c.height}x${c.width}x${c.channels}` +
    (c.num_classes ? `, ${c.num_classes} classes` : ", unconditional");
  for (const entry of m.models) $("model").add(new Option(`${entry.file} (${entry.precision})`, entry.name));
  if (c.num_classes) {
    $("label").add(new Option("one of each", ""));
    c.class_names.forEach((name, i) => $("label").add(new Option(`${i}: ${name}`, String(i))));
    for (let i = c.class_names.length; i < c.num_classes; i++) $("label").add(new Option(String(i), String(i)));
  } else {
    $("label-wrap").hidden = true;
  }
  if (m.latent_rule !== RULE) {
    $("notice").textContent = `This model was exported with the latent rule "${m.latent_rule}", which only numpy ` +
      `implements: this page cannot reproduce Python's images for a seed of this model. It samples with "${RULE}" ` +
      "instead (export the model again with this edgegan for seeds that match Python's).";
  }
  webgpu().then((gpu) => {
    $("env").textContent = `cross-origin isolated: ${!!self.crossOriginIsolated}; WASM threads: ${threads()}; ` +
      `WebGPU: ${gpu ? "yes" : "no"}; onnxruntime-web ${m.runtime.version}` + (m.runtime.local ? " (local)" : " (CDN)");
  });
  const label = () => ($("label").value === "" ? null : Number($("label").value));
  $("draw").onclick = () => guarded("drawing", async () =>
    draw(await sample(seedValue("seed", 0), value("count") ?? 16, label(), value("truncation"), $("model").value)));
  $("interpolate").onclick = () => guarded("interpolating", async () =>
    draw(await interpolate(seedValue("seed-a", 0), seedValue("seed-b", 1), value("steps") ?? 8, label(), $("model").value)));
  $("bench").onclick = () => guarded("benchmarking", async () => showBench(await bench({
    batches: $("batches").value.split(",").map((x) => Number(x.trim())).filter((x) => x > 0),
    seconds: value("seconds") ?? 2 })));
}

async function start() {
  const response = await fetch("manifest.json");
  if (!response.ok) throw new Error(`manifest.json: HTTP ${response.status}`);
  const m = await response.json();
  state.manifest = m;
  await loadScript(m.runtime);
  ort.env.wasm.wasmPaths = new URL(m.runtime.wasm_paths, location.href).href;
  ort.env.wasm.numThreads = threads();
  setUp(m);
  await session(null);  // the first model must load before the page says it is ready
  say("ready");
  $("draw").click();
}

const ready = start().catch((e) => { say(`error: ${e.message || e}`, true); throw e; });
window.edgegan = { ready, sample, interpolate, bench, showBench, webgpu, state, RULE };
