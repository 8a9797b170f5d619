#!/usr/bin/env node
// Sample a grid from an edgegan generator.onnx in node: onnxruntime-node + edgegan's latent rule in JavaScript.
// The images are bit for bit the ones `edgegan sample MODEL --seed S -n N --npy FILE` writes (same uint8 array).
//
//   npm install --ignore-scripts          (at the repository root: onnxruntime-node, pinned in package.json)
//   node examples/node/sample.mjs models/fashion/generator.onnx --seed 42 -n 16 --label 7 --npy out.npy --png out.png
//
// The contract (latent size, classes, image shape, latent rule) is read from the model's metadata.
import { readFileSync, writeFileSync } from "node:fs";
import { deflateSync } from "node:zlib";
import * as ort from "onnxruntime-node";
import { RULE, latents, toUint8NHWC } from "../../runtime/web/latents.js";

function parse(argv) {
  const opts = { seed: 0, n: 16, label: null, truncation: null, npy: null, png: null, model: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], next = () => argv[++i];
    if (a === "--seed") opts.seed = BigInt(next());
    else if (a === "-n" || a === "--num") opts.n = Number(next());
    else if (a === "--label") opts.label = Number(next());
    else if (a === "--truncation") opts.truncation = Number(next());
    else if (a === "--npy") opts.npy = next();
    else if (a === "--png") opts.png = next();
    else if (!opts.model) opts.model = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!opts.model) throw new Error("usage: sample.mjs MODEL [--seed S] [-n N] [--label K] [--truncation T] [--npy F] [--png F]");
  if (!Number.isInteger(opts.n) || opts.n < 1) throw new Error(`-n must be a positive integer, got ${opts.n}`);
  return opts;
}

/** ModelProto.metadata_props (field 14: {key = 1, value = 2}) of an .onnx file as an object. onnxruntime-node
 *  does not expose a model's custom metadata, so the few protobuf fields needed are read here; the rest is skipped. */
function onnxMetadata(buf) {
  let pos = 0;
  const varint = () => {
    let v = 0n, shift = 0n;
    for (;;) { const b = buf[pos++]; v |= BigInt(b & 0x7f) << shift; shift += 7n; if (!(b & 0x80)) return v; }
  };
  const fields = (end, onField) => {
    while (pos < end) {
      const tag = Number(varint()), field = tag >>> 3, wire = tag & 7;
      if (wire === 0) varint();
      else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) { const len = Number(varint()), start = pos; pos += len; onField(field, start, pos); }
      else throw new Error(`not an ONNX model (protobuf wire type ${wire})`);
    }
  };
  const meta = {};
  fields(buf.length, (field, start, end) => {
    if (field !== 14) return;
    const entry = {}, after = pos;
    pos = start;
    fields(end, (f, a, b) => { entry[f] = buf.toString("utf8", a, b); });
    pos = after;
    if (entry[1] !== undefined) meta[entry[1]] = entry[2] ?? "";
  });
  return meta;
}

/** The edgegan contract from the model's metadata (runtime/contract.py's keys). */
function contractOf(path) {
  const meta = onnxMetadata(readFileSync(path));
  if (!meta["edgegan.nz"]) throw new Error(`${path} is not an edgegan generator: no edgegan.* metadata`);
  const image = JSON.parse(meta["edgegan.image"]);
  return { nz: Number(meta["edgegan.nz"]), numClasses: Number(meta["edgegan.num_classes"]), ...image,
    output: meta["edgegan.output"], rule: meta["edgegan.latent_rule"] ?? "numpy-pcg64-ziggurat" };
}

function npy(pixels, shape) {  // NumPy .npy v1.0, uint8, C order
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(", ")}), }`;
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const head = Buffer.alloc(10);
  head.write("\x93NUMPY", 0, "latin1"); head[6] = 1; head[7] = 0; head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, "latin1"), Buffer.from(pixels)]);
}

function png(pixels, n, h, w, c) {  // a grid, 1-pixel gaps, 8-bit gray or RGB
  const cols = Math.ceil(Math.sqrt(n)), rows = Math.ceil(n / cols), W = cols * (w + 1) + 1, H = rows * (h + 1) + 1;
  const raw = Buffer.alloc(H * (W * c + 1), 255);
  for (let y = 0; y < H; y++) raw[y * (W * c + 1)] = 0;
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let k = 0; k < c; k++) {
          const Y = 1 + Math.floor(b / cols) * (h + 1) + y, X = 1 + (b % cols) * (w + 1) + x;
          raw[Y * (W * c + 1) + 1 + X * c + k] = pixels[((b * h + y) * w + x) * c + k];
        }
  const crcTable = Array.from({ length: 256 }, (_, i) => {
    let v = i; for (let k = 0; k < 8; k++) v = v & 1 ? 0xedb88320 ^ (v >>> 1) : v >>> 1; return v >>> 0; });
  const crc = (buf) => { let v = 0xffffffff; for (const x of buf) v = crcTable[(v ^ x) & 255] ^ (v >>> 8); return (v ^ 0xffffffff) >>> 0; };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const sum = Buffer.alloc(4); sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(W, 0); ihdr.writeUInt32BE(H, 4); ihdr[8] = 8; ihdr[9] = c === 1 ? 0 : 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

async function main() {
  const opts = parse(process.argv.slice(2));
  const c = contractOf(opts.model);
  const session = await ort.InferenceSession.create(opts.model);
  if (c.rule !== RULE) {
    console.error(`note: ${opts.model} uses latent rule ${c.rule} (numpy only): these images are not Python's for ` +
      `seed ${opts.seed}; sampling with ${RULE}`);
  }
  const z = latents(opts.seed, 0, opts.n, c.nz, opts.truncation);  // Float32Array [n * nz]
  const feeds = { z: new ort.Tensor("float32", z, [opts.n, c.nz]) };
  if (c.numClasses) {
    const labels = new BigInt64Array(opts.n);
    for (let i = 0; i < opts.n; i++) labels[i] = BigInt(opts.label ?? i % c.numClasses);  // edgegan's default labels
    feeds.label = new ort.Tensor("int64", labels, [opts.n]);
  }
  const image = (await session.run(feeds)).image;
  const pixels = c.output === "uint8_nhwc" ? new Uint8Array(image.data)
    : toUint8NHWC(image.data, opts.n, c.channels, c.height, c.width);  // uint8 [n, H, W, C]
  if (opts.npy) writeFileSync(opts.npy, npy(pixels, [opts.n, c.height, c.width, c.channels]));
  if (opts.png) writeFileSync(opts.png, png(pixels, opts.n, c.height, c.width, c.channels));
  console.log(`${opts.n} images ${c.height}x${c.width}x${c.channels}, seed ${opts.seed}, rule ${c.rule}` +
    (opts.npy ? `, ${opts.npy}` : "") + (opts.png ? `, ${opts.png}` : ""));
}

main().catch((e) => { console.error(`error: ${e.message || e}`); process.exit(1); });
